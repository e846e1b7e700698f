// Package greeting builds greetings in a few languages.
package greeting

import (
	"errors"
	"strings"
)

// ErrUnknownLanguage is returned for a language code with no greeting.
var ErrUnknownLanguage = errors.New("unknown language")

// ErrEmptyName is returned when the name is empty after trimming.
var ErrEmptyName = errors.New("empty name")

// Hello returns the greeting for name in the language lang ("" means English).
func Hello(name, lang string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", ErrEmptyName
	}
	switch strings.ToLower(lang) {
	case "", "en":
		return "Hello, " + name + "!", nil
	case "fr":
		return "Bonjour, " + name + " !", nil
	case "de":
		return "Hallo, " + name + "!", nil
	case "es":
		return "¡Hola, " + name + "!", nil
	default:
		return "", ErrUnknownLanguage
	}
}

// Shout returns the greeting in capitals, for the impatient.
func Shout(greeting string) string {
	return strings.ToUpper(greeting)
}
