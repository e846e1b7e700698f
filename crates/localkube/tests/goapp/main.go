// A tiny service for localkube's tests: built with -cover, it flushes its
// coverage counters into $GOCOVERDIR on SIGUSR1 (as Skaffold's Go coverage
// tutorial does) and answers HTTP on :$PORT (default 8080), as services do.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/coverage"
	"syscall"
)

func main() {
	dir := os.Getenv("GOCOVERDIR")
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR1)
	go func() {
		for range signals {
			if err := coverage.WriteCountersDir(dir); err != nil {
				log.Printf("writing counters: %v", err)
				continue
			}
			if err := coverage.ClearCounters(); err != nil {
				log.Printf("clearing counters: %v", err)
			}
			log.Printf("counters written to %s", dir)
		}
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "hello from %s pid %d\n", host, os.Getpid())
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
