package token

import (
	"os"
)

// OpenTool opens the module for a command-line tool (gohsm,
// cloudhsm-cli): the configuration file path, or "" for the usual search
// ($GOHSM_CONF, XDG, /etc, the embedded default), and the module's log
// to the configured log file only, never to the terminal (a tool reports
// its errors itself). A file that cannot be read is a configuration error
// ("config: " and the reason).
func OpenTool(path string) (*Module, error) {
	var cfg *Config
	var err error
	if path != "" {
		// Read the file here: LoadConfig takes text containing '=' for
		// configuration text, and a path may contain '='.
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, configReadError{rerr}
		}
		cfg, err = ParseConfig(string(b), path)
	} else {
		cfg, err = LoadConfig("")
	}
	if err != nil {
		return nil, err
	}
	if cfg.LogFile == "" {
		cfg.LogFile = os.DevNull
	}
	return Open(cfg)
}

// configReadError is a configuration file that cannot be read: a
// configuration error that is also the read's error.
type configReadError struct{ err error }

func (e configReadError) Error() string   { return "config: " + e.err.Error() }
func (e configReadError) Unwrap() []error { return []error{e.err, errConfig} }
