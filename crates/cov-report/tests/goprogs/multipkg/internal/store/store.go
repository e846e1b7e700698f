// Package store is a small map with methods, pointer and value receivers.
package store

type Store struct{ m map[string]string }

func New() *Store { return &Store{m: map[string]string{}} }

func (s *Store) Put(k, v string) { s.m[k] = v }

func (s *Store) Get(k string) (string, bool) {
	v, ok := s.m[k]
	return v, ok
}

func (s Store) Len() int { return len(s.m) }
