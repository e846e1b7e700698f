// A tiny HTTP service for cov-report's golden tests: it prints its address,
// serves /hello and /quit, and returns from main (writing coverage) on /quit.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

type counter struct{ n int }

func (c *counter) inc() int {
	c.n++
	return c.n
}

// A top-level function literal: Go reports it as a literal, hidden in func output.
var shout = func(s string) string {
	if s == "" {
		return "!"
	}
	return strings.ToUpper(s) + "!"
}

func greet(name string) string {
	if name == "" {
		return "hello, stranger"
	}
	if len(name) > 20 {
		return "hello, long name"
	}
	return "hello, " + name
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	c := &counter{}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		n := c.inc()
		fmt.Fprintf(w, "%s #%d\n", greet(r.URL.Query().Get("name")), n)
	})
	mux.HandleFunc("/shout", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, shout(r.URL.Query().Get("s")))
	})
	mux.HandleFunc("/quit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "bye")
		go ln.Close()
	})
	_ = http.Serve(ln, mux)
}
