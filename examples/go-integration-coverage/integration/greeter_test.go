//go:build integration

// Package integration drives the deployed greeter service over HTTP and
// fails on any wrong answer. It runs as the first Skaffold post-deploy hook
// of the coverage profile, so what it exercises is what the coverage report
// shows as covered.
//
//	go test -tags integration -count=1 ./integration/
//
// Where it sends requests:
//   - GREETER_ADDRS: comma-separated host:port (or http:// URLs) of the
//     pods or of a Service; requests are spread round-robin over them.
//   - otherwise it runs `kubectl port-forward service/greeter :80` in the
//     context and namespace Skaffold passes (SKAFFOLD_KUBE_CONTEXT, first of
//     SKAFFOLD_NAMESPACES), or kubectl's current ones. A port-forward to a
//     Service reaches one of its pods only.
package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exchange is one request and the answer the service must give.
type exchange struct {
	path       string
	wantStatus int
	wantField  string // a top-level JSON field of the answer
	wantValue  any    // its value (JSON numbers decode as float64)
}

// Deliberately not everything: the report should show what is left untested
// (other languages, shouting, Buzz, a bad second operand, ...).
var exchanges = []exchange{
	{"/healthz", http.StatusOK, "status", "ok"},
	{"/greet?name=Ada", http.StatusOK, "greeting", "Hello, Ada!"},
	{"/greet?name=Ada&lang=fr", http.StatusOK, "greeting", "Bonjour, Ada !"},
	{"/greet?name=%20", http.StatusBadRequest, "error", "name is required"},
	{"/greet?name=Ada&lang=xx", http.StatusNotFound, "error", "no greeting for language xx"},
	{"/sum?a=2&b=40", http.StatusOK, "sum", float64(42)},
	{"/sum?a=two&b=40", http.StatusBadRequest, "error", "a must be an integer"},
	{"/fizzbuzz/15", http.StatusOK, "answer", "FizzBuzz"},
	{"/fizzbuzz/9", http.StatusOK, "answer", "Fizz"},
	{"/fizzbuzz/7", http.StatusOK, "answer", "7"},
	{"/fizzbuzz/0", http.StatusBadRequest, "error", "n must be a positive integer"},
}

func TestGreeter(t *testing.T) {
	bases := targets(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for i, ex := range exchanges {
		base := bases[i%len(bases)]
		t.Run(ex.path, func(t *testing.T) {
			check(t, client, base, ex)
		})
	}
}

func check(t *testing.T, client *http.Client, base string, ex exchange) {
	t.Helper()
	url := base + ex.path
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the answer: %v", url, err)
	}
	if resp.StatusCode != ex.wantStatus {
		t.Fatalf("GET %s: status %d, want %d (body %q)", url, resp.StatusCode, ex.wantStatus, body)
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("GET %s: answer is not a JSON object: %v (body %q)", url, err, body)
	}
	if got := answer[ex.wantField]; got != ex.wantValue {
		t.Fatalf("GET %s: %s = %#v, want %#v", url, ex.wantField, got, ex.wantValue)
	}
}

// targets returns the base URLs to send requests to.
func targets(t *testing.T) []string {
	t.Helper()
	if addrs := os.Getenv("GREETER_ADDRS"); addrs != "" {
		var bases []string
		for _, a := range strings.Split(addrs, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if !strings.Contains(a, "://") {
				a = "http://" + a
			}
			bases = append(bases, strings.TrimRight(a, "/"))
		}
		if len(bases) == 0 {
			t.Fatalf("GREETER_ADDRS=%q names no address", addrs)
		}
		return bases
	}
	return []string{portForward(t)}
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)

// portForward starts kubectl port-forward to the Service for the duration of
// the test and returns its local URL.
func portForward(t *testing.T) string {
	t.Helper()
	args := []string{"port-forward", "service/greeter", ":80"}
	if ctx := os.Getenv("SKAFFOLD_KUBE_CONTEXT"); ctx != "" {
		args = append(args, "--context", ctx)
	}
	if ns, _, _ := strings.Cut(os.Getenv("SKAFFOLD_NAMESPACES"), ","); ns != "" {
		args = append(args, "--namespace", ns)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("kubectl %s: %v (is kubectl on PATH? or set GREETER_ADDRS)", strings.Join(args, " "), err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	port := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if m := forwarding.FindStringSubmatch(lines.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		// Keep reading so kubectl never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p := <-port:
		return fmt.Sprintf("http://127.0.0.1:%s", p)
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl %s: no port after 30s", strings.Join(args, " "))
		return ""
	}
}
