package admin

import "runtime/debug"

// BuildVersion describes the running binary for the overview and
// bayeux_build_info: override when set (say, from -ldflags -X), else the
// main module's version and, when the build recorded it, the VCS revision
// ("(devel)" for a plain go build without VCS stamping).
func BuildVersion(override string) string {
	if override != "" {
		return override
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" && v == "(devel)" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return rev + dirty
	}
	return v
}
