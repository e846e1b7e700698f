// Package shapes has methods on value and pointer receivers and a generic.
package shapes

type Square struct{ Side float64 }

type Circle struct{ R float64 }

func (s Square) Area() float64 { return s.Side * s.Side }

func (c Circle) Area() float64 {
	if c.R < 0 {
		return 0
	}
	return 3.14159 * c.R * c.R
}

func (c *Circle) Grow(by float64) {
	c.R += by
}

type Number interface{ ~int | ~float64 }

func Max[T Number](xs []T) T {
	var best T
	for i, x := range xs {
		if i == 0 || x > best {
			best = x
		}
	}
	return best
}
