package main

import (
	"log"
	"os"
	"os/signal"
	"runtime/coverage"
	"syscall"
	"time"
)

// startCoverageFlusher makes this process write its coverage counters when
// told to, and before it is stopped.
//
// A Go binary built with -cover only writes its counters when main returns or
// os.Exit runs, and pods are usually killed, not exited: on a SIGTERM without a
// handler the runtime dies from the signal and writes nothing. So:
//
//   - SIGUSR1 (sent by `cov-signal`, `cov-collect --follow`, or `kill -USR1 1`
//     in the container) calls flushCoverage.
//   - With handleTermination, SIGTERM and SIGINT also call flushCoverage, then
//     end the process with the status default handling gives (128+signal: 143
//     for SIGTERM), so the kubelet and your logs see the same exit as before.
//
// If your service already handles SIGTERM for a graceful shutdown (as main.go
// does), pass false and call flushCoverage() at the end of that shutdown path,
// after the server has drained: the counters then include the last requests,
// and your shutdown behaviour is unchanged. (Returning from main also writes
// what ran since the last flush; the explicit call logs where and when.)
//
// Every flush writes the counters into GOCOVERDIR and then resets them, so
// each file holds only what ran since the previous one and tools can add the
// files up without double counting. That needs -covermode=atomic:
// WriteCountersDir and ClearCounters return an error in the other modes (set,
// count), because reading and clearing counters while other goroutines still
// update them is only safe when the updates are atomic.
//
// It does nothing unless GOCOVERDIR is set, so the same code ships in
// ordinary builds.
func startCoverageFlusher(handleTermination bool) {
	dir := os.Getenv("GOCOVERDIR")
	if dir == "" {
		return
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			flushCoverage()
		}
	}()
	if handleTermination {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			sig := (<-term).(syscall.Signal)
			flushCoverage()
			exitAsIfKilled(sig)
		}()
	}
	log.Printf("coverage: SIGUSR1 writes counters to %s", dir)
}

// flushCoverage writes the counters into GOCOVERDIR, then clears them. Safe to
// call from any goroutine; a no-op without GOCOVERDIR.
func flushCoverage() {
	dir := os.Getenv("GOCOVERDIR")
	if dir == "" {
		return
	}
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

// exitAsIfKilled ends the process the way the signal's default action would:
// it restores that action and sends the signal again. PID 1 of a container
// ignores signals without a handler, so if the process is still alive shortly
// after, it exits with the status a shell reports for the signal (128+n).
func exitAsIfKilled(sig syscall.Signal) {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(100 * time.Millisecond)
	os.Exit(128 + int(sig))
}
