// Command acwd is the acwstream After Call Work processor.
//
//	acwd config check [FILE]         validate a configuration, print the effective settings
//	acwd demo [flags]                watch the engine on live simulated traffic
//	acwd run [flags]                 the service: Kafka → engine → Redis and derived topics
//	acwd replay [flags] [FILE ...]   run the engine over JSON Lines files
//	acwd devbroker [flags]           embedded Kafka-protocol broker for development
//	acwd sim [flags]                 write a realistic, seeded event log
//	acwd version                     print the version
//
// cmd/acwd only wires things together: flags, environment and the config
// file are read here and nowhere else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"config", "check a configuration and print the effective settings", runConfigCmd},
		{"demo", "watch the engine on live simulated traffic (no Kafka or Redis needed)", runDemo},
		{"devbroker", "embedded Kafka-protocol broker for development and tests (not production)", runDevbroker},
		{"run", "consume Kafka, write live metrics to Redis and publish derived topics", runRun},
		{"replay", "run the engine in pure event time over JSON Lines (files or stdin)", runReplay},
		{"sim", "write a realistic, seeded canonical event log", runSim},
		{"translate", "print the canonical events a platform adapter makes of its records", runTranslate},
		{"version", "print the version", func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "acwd", version)
			return err
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: acwd COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'acwd COMMAND -h' for the flags of a command.")
}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

// errConfig marks an invalid setting (file, environment or flag): exit
// status 2, with a message naming the setting.
var errConfig = errors.New("configuration")

// sameStop is how soon after the first a signal is part of the same stop:
// GNU timeout sends its signal to the command and then to the command's
// process group, a few milliseconds apart.
const sameStop = 100 * time.Millisecond

// main runs a command until it ends or a first SIGTERM/SIGINT asks it to
// stop cleanly; a second signal (sameStop or more later) exits at once
// (status 130).
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		first := time.Now()
		cancel()
		for range sigs {
			if time.Since(first) < sameStop {
				continue
			}
			fmt.Fprintln(os.Stderr, "acwd: second signal: exiting now without a final flush")
			os.Exit(130)
		}
	}()
	os.Exit(mainExit(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func mainExit(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage), errors.Is(err, errConfig):
			fmt.Fprintf(stderr, "acwd %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "acwd %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "acwd: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("acwd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, turning flag mistakes into errUsage: the
// mistake once, then the command's one-line synopsis (its -h prints the
// whole help).
func parseFlags(fs *flag.FlagSet, args []string) error {
	out, help := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = help
	switch {
	case errors.Is(err, flag.ErrHelp):
		help()
		return err
	case err != nil:
		var b strings.Builder
		fs.SetOutput(&b)
		help()
		fs.SetOutput(out)
		synopsis, _, _ := strings.Cut(b.String(), "\n")
		return fmt.Errorf("%w: %v\n%s (%s -h lists every flag)", errUsage, err, synopsis, fs.Name())
	}
	return nil
}
