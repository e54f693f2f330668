package main

import (
	"fmt"

	"github.com/roost-mail/roost/internal/app"
)

func configCommands() []command {
	return []command{
		{"config check", "", "load and validate the configuration", configCheck},
		{"version", "", "print the version", version},
	}
}

func configCheck(e *env, args []string) error {
	f := newFlags("config check")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	_, src, err := f.loadConfig()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %s\n", src)
	return nil
}

func version(e *env, args []string) error {
	if _, err := newFlags("version").parse(args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "roost %s\n", app.Version())
	return nil
}
