// Command greeter is the example service: a small HTTP API whose integration
// tests run while it is deployed in Kubernetes, so their coverage can be
// collected from the pods (see README.md).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/greeter/internal/handlers"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}

	// Only active in coverage builds with GOCOVERDIR set; see coverage.go.
	// false: this service shuts down gracefully on SIGTERM itself and flushes
	// the counters at the end of that (below).
	startCoverageFlusher(false)

	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           handlers.New(),
		ReadHeaderTimeout: 5 * time.Second,
	}

	// Kubernetes stops pods with SIGTERM: shut down gracefully.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
		// Coverage builds: write what the last requests covered (coverage.go).
		flushCoverage()
	}()

	log.Printf("greeter listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("listen: %v", err)
	}
	// ListenAndServe returns as soon as Shutdown starts: wait for it to finish.
	<-done
}
