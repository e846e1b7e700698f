// Flushes coverage counters several times, as a SIGUSR1 handler would,
// with runtime/coverage.WriteCountersDir + ClearCounters (atomic mode).
package main

import (
	"fmt"
	"os"
	"runtime/coverage"
)

func step(i int) string {
	switch {
	case i%3 == 0:
		return "fizz"
	case i%3 == 1:
		return "one"
	}
	return "other"
}

func main() {
	dir := os.Getenv("GOCOVERDIR")
	for round := 0; round < 3; round++ {
		for i := 0; i <= round; i++ {
			fmt.Println(step(i))
		}
		if err := coverage.WriteCountersDir(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := coverage.ClearCounters(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Println(step(7))
}
