// Command bayeux runs the Bayeux server. It is configured by BAYEUX_*
// environment variables; bayeux -h lists them with their defaults.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bayeux-go/bayeux/internal/app"
	"github.com/bayeux-go/bayeux/internal/config"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "-help", "--help", "help":
			config.PrintHelp(os.Stdout)
			return
		case "passwd":
			if err := app.Passwd(os.Args[2:], os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "bayeux passwd:", err)
				os.Exit(2)
			}
			return
		case "token":
			cfg, err := config.Load()
			if err == nil {
				err = app.Token(cfg, os.Args[2:], os.Stdout, os.Stderr)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bayeux token:", err)
				os.Exit(2)
			}
			return
		default:
			fmt.Fprintf(os.Stderr, "bayeux: unknown argument %q (try -h)\n", os.Args[1])
			os.Exit(2)
		}
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bayeux:", err)
		os.Exit(2)
	}
	a, err := app.New(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bayeux:", err)
		os.Exit(1)
	}
	defer a.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Serve(ctx, nil); err != nil {
		a.Log.Error("server failed", "err", err)
		os.Exit(1)
	}
}
