package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// Main is the bayeux-bench command: it parses args, runs, prints, and
// returns the exit status (0 ok, 1 failed run, 2 bad usage).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "bayeux-bench:", err)
		return 2
	}
	runtime.GOMAXPROCS(cfg.Procs)
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bayeux-bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bayeux-bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Progress = stderr
	began := time.Now()
	res, err := Run(ctx, cfg)
	if res != nil {
		if cfg.JSON {
			_ = res.WriteJSON(stdout)
		} else {
			_ = res.WriteText(stdout)
		}
		for _, s := range res.Warnings {
			if cfg.JSON {
				fmt.Fprintln(stderr, "bayeux-bench: warning:", s)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bayeux-bench: %v (after %s)\n", err, time.Since(began).Round(time.Millisecond))
		return 1
	}
	return 0
}
