// A multi-package program for cov-report's golden tests; what it runs
// depends on its arguments, so several processes cover different code.
package main

import (
	"fmt"
	"os"
	"strconv"

	"example.com/multipkg/calc"
	"example.com/multipkg/internal/store"
)

func main() {
	s := store.New()
	for _, a := range os.Args[1:] {
		switch a {
		case "add", "mul", "div":
			r, err := calc.Apply(a, 12, 4)
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			s.Put(a, strconv.Itoa(r))
		case "loop":
			for i := 0; i < 300; i++ {
				s.Put("k"+strconv.Itoa(i%7), "v")
			}
		default:
			if v, ok := s.Get(a); ok {
				fmt.Println(v)
			} else {
				fmt.Println("missing", a)
			}
		}
	}
	fmt.Println(s.Len(), "keys")
}
