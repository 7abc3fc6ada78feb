//go:build js

package wasmclient

import (
	"fmt"
	"syscall/js"
)

// consoleLogger logs to the browser's console: log/slog would add about
// 40 KB (brotli) to a page's WebAssembly.
type consoleLogger struct{}

func defaultLogger() Logger { return consoleLogger{} }

func (consoleLogger) Debug(msg string, args ...any) { console("debug", msg, args) }
func (consoleLogger) Info(msg string, args ...any)  { console("info", msg, args) }
func (consoleLogger) Warn(msg string, args ...any)  { console("warn", msg, args) }

// console writes msg and its key-value pairs with console[level].
func console(level, msg string, args []any) {
	for i := 0; i+1 < len(args); i += 2 {
		msg += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	js.Global().Get("console").Call(level, msg)
}
