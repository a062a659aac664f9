package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"gohsm/token"
)

// The token store's administration (docs/store-postgres.md): where a
// slot's token lives, its schema version, and migrating it.

func init() {
	commands = append(commands,
		command{path: []string{"store", "status"}, need: needNone,
			help: "show the slot's token store: backend, URL (without password), reachable or not, schema version", setup: storeStatus},
		command{path: []string{"store", "migrate"}, need: needNone,
			help: "bring the slot's PostgreSQL database to this gohsm's schema version (under the migration lock)", setup: storeMigrate},
	)
}

// storeStatus prints the status; a store this gohsm cannot use
// (unreachable, another schema version, not a token store) is an error
// after the status is printed (with --json: the error object only).
func storeStatus(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		s, err := e.slot()
		if err != nil {
			return err
		}
		st := s.StoreStatus()
		if st.Error != "" && e.g.json {
			return storeStatusErr(st)
		}
		if err := e.emit(st, func(w io.Writer) {
			where := st.URL
			if where == "" {
				where = st.Dir
			}
			fmt.Fprintf(w, "slot %d: %s store %s\n", st.Slot, st.Backend, where)
			if st.Backend == "postgres" {
				fmt.Fprintf(w, "  per-host state in %s\n", st.Dir)
				reach := "reachable"
				if !st.Reachable {
					reach = "unreachable"
				}
				fmt.Fprintf(w, "  database %s\n", reach)
			}
			if st.Reachable {
				v := fmt.Sprint(st.SchemaVersion)
				if st.SchemaVersion == 0 && st.Backend == "postgres" && st.Error == "" {
					v = "none yet (empty database: the schema is made at first use)"
				}
				fmt.Fprintf(w, "  schema version %s (this gohsm: %d)\n", v, st.CodeVersion)
			}
		}); err != nil {
			return err
		}
		if st.Error != "" {
			return storeStatusErr(st)
		}
		return nil
	}
}

func storeStatusErr(st token.StoreStatus) error {
	code := codeStoreVersion
	if !st.Reachable {
		code = codeStoreUnreachable
	}
	return cliErrorf(code, "slot %d: %s", st.Slot, st.Error)
}

func storeMigrate(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		s, err := e.slot()
		if err != nil {
			return err
		}
		before, after, err := s.MigrateStore()
		if errors.Is(err, token.ErrNothingToMigrate) {
			return e.emit(map[string]any{"slot": s.ID(), "backend": "sqlite", "migrated": false},
				func(w io.Writer) {
					fmt.Fprintf(w, "slot %d keeps its token in SQLite (%s), whose format is upgraded when it is opened: nothing to migrate\n", s.ID(), s.Config().Dir)
				})
		}
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"slot": s.ID(), "backend": "postgres", "url": token.RedactURL(s.Config().Store),
			"migrated": before != after, "before": before, "after": after},
			func(w io.Writer) {
				if before == after {
					fmt.Fprintf(w, "slot %d: schema version %d is current: nothing to migrate\n", s.ID(), after)
					return
				}
				fmt.Fprintf(w, "slot %d: migrated schema version %d to %d\n", s.ID(), before, after)
			})
	}
}
