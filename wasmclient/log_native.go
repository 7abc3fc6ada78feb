//go:build !js

package wasmclient

import "log/slog"

func defaultLogger() Logger { return slog.Default() }
