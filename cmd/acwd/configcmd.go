package main

import (
	"context"
	"fmt"
	"io"
)

const configUsage = `usage: acwd config check [FILE] [run flags]

Validates the configuration acwd run would use — defaults, then FILE (or
--config, or $ACW_CONFIG), then ACW_… environment variables, then flags —
and prints the effective settings as YAML, each with where it came from.
Passwords are masked. Exit status 0 when valid, 2 with a message naming the
setting when not.
`

func runConfigCmd(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, configUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return fmt.Errorf("%w: want 'acwd config check [FILE]'", errUsage)
	}
	args = args[1:]
	fs := newFlagSet("config check", stderr)
	var f runFlags
	var ss settings
	f.register(&ss)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configUsage); fs.PrintDefaults() }
	// A leading FILE is the config file.
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		args = append([]string{"--config", args[0]}, args[1:]...)
	}
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if _, err := f.check(); err != nil {
		return err
	}
	ss.print(stdout)
	return nil
}
