// A small program for the report-format tests: two packages, methods,
// a generic function, several init functions and a function literal.
package main

import (
	"fmt"
	"os"
	"strings"

	"example.com/goapp/shapes"
)

var registry []string

func init() { registry = append(registry, "first") }

func init() { registry = append(registry, "second") }

var shout = func(s string) string {
	if s == "" {
		return "<empty>"
	}
	return strings.ToUpper(s) + "!"
}

func describe(name string) string {
	switch name {
	case "square":
		return fmt.Sprint(shapes.Square{Side: 2}.Area())
	case "circle":
		return fmt.Sprint(shapes.Circle{R: 1}.Area())
	case "max":
		return fmt.Sprint(shapes.Max([]int{3, 9, 4}))
	default:
		return shout(name)
	}
}

func neverCalled() {
	fmt.Println("this & that < those")
}

func main() {
	for _, a := range os.Args[1:] {
		fmt.Println(describe(a))
	}
	if len(os.Args) > 10 {
		neverCalled()
	}
}
