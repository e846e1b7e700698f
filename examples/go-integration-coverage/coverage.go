package main

import (
	"log"
	"os"
	"os/signal"
	"runtime/coverage"
	"syscall"
)

// startCoverageFlusher writes this process's coverage counters on SIGUSR1.
//
// A Go binary built with -cover only writes its counters when it exits
// normally, and pods are usually killed, not exited. So on SIGUSR1 (sent by
// `cov-signal`, or `kill -USR1 1` in the container) the counters are written
// into GOCOVERDIR and then reset, so the next flush holds only what ran since
// this one and tools can add up the files without double counting.
//
// The binary must be built with -covermode=atomic: WriteCountersDir and
// ClearCounters both return an error in the other modes (set, count), because
// reading and clearing counters while other goroutines are still updating
// them is only safe when the updates are atomic.
//
// It does nothing unless GOCOVERDIR is set, so the same code ships in
// ordinary builds.
func startCoverageFlusher() {
	dir := os.Getenv("GOCOVERDIR")
	if dir == "" {
		return
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR1)
	go func() {
		for range signals {
			flushCoverage(dir)
		}
	}()
	log.Printf("coverage: SIGUSR1 writes counters to %s", dir)
}

func flushCoverage(dir string) {
	if err := coverage.WriteCountersDir(dir); err != nil {
		// Not built with -cover, not -covermode=atomic, or dir not writable.
		log.Printf("coverage: writing counters to %s: %v", dir, err)
		return
	}
	// Only clear what was written: clearing after a failed write would lose it.
	if err := coverage.ClearCounters(); err != nil {
		log.Printf("coverage: clearing counters: %v", err)
		return
	}
	log.Printf("coverage: counters written to %s", dir)
}
