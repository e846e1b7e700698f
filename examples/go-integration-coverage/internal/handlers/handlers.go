// Package handlers holds the HTTP handlers of the greeter service.
package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"example.com/greeter/internal/greeting"
)

// New returns the service's routes.
func New() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /greet", greet)
	mux.HandleFunc("GET /sum", sum)
	mux.HandleFunc("GET /fizzbuzz/{n}", fizzbuzz)
	return mux
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// greet answers /greet?name=Ada&lang=fr[&shout=1].
func greet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	msg, err := greeting.Hello(q.Get("name"), q.Get("lang"))
	switch {
	case errors.Is(err, greeting.ErrEmptyName):
		writeError(w, http.StatusBadRequest, "name is required")
		return
	case errors.Is(err, greeting.ErrUnknownLanguage):
		writeError(w, http.StatusNotFound, "no greeting for language "+q.Get("lang"))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if q.Get("shout") == "1" {
		msg = greeting.Shout(msg)
	}
	writeJSON(w, http.StatusOK, map[string]string{"greeting": msg})
}

// sum answers /sum?a=1&b=2.
func sum(w http.ResponseWriter, r *http.Request) {
	a, err := strconv.Atoi(r.URL.Query().Get("a"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "a must be an integer")
		return
	}
	b, err := strconv.Atoi(r.URL.Query().Get("b"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "b must be an integer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"sum": a + b})
}

// fizzbuzz answers /fizzbuzz/{n} with the classic word for n.
func fizzbuzz(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "n must be a positive integer")
		return
	}
	var word string
	switch {
	case n%15 == 0:
		word = "FizzBuzz"
	case n%3 == 0:
		word = "Fizz"
	case n%5 == 0:
		word = "Buzz"
	default:
		word = strconv.Itoa(n)
	}
	writeJSON(w, http.StatusOK, map[string]string{"answer": word})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is already sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}
