package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"gohsm/internal/admin"
	"gohsm/internal/clusterplan"
	"gohsm/token/cluster"
)

// The cluster commands (docs/cluster.md): the emulated cluster's control
// plane. They need no login. On AWS the equivalent (an HSM added, removed
// or replaced) is the console's or the cloudhsmv2 API's, which answer to
// the AWS account, not to the HSM's users; here whoever may write the
// token directory may write its cluster.state file anyway, and a login
// would be impossible while a plan keeps the store down.

// cluster is the selected slot's emulated cluster, or the no_cluster
// error naming the keys that give it one.
func (e *env) cluster() (*cluster.Cluster, error) {
	s, err := e.slot()
	if err != nil {
		return nil, err
	}
	return admin.Cluster(s)
}

func clusterStatus(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.cluster()
		if err != nil {
			return err
		}
		st := c.Status()
		return e.emit(st, func(w io.Writer) { printStatus(w, st, time.Now()) })
	}
}

// printStatus writes st for people: a line about the cluster, a table of
// the HSMs, one of the classes with a budget or with calls, the plan's
// steps. now dates the "since" column relative to the present.
func printStatus(w io.Writer, st cluster.Status, now time.Time) {
	check := "off"
	if st.Check {
		check = "on"
	}
	fmt.Fprintf(w, "%s, key availability check %s, retry mode %s\n", plural(len(st.HSMs), "HSM"), check, st.Retry)
	if st.StoreDownUntil != nil {
		fmt.Fprintf(w, "store down until %s (a fault plan dropped it)\n", stamp(*st.StoreDownUntil))
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, h := range st.HSMs {
		rows = append(rows, []string{strconv.Itoa(h.Index), h.ID, h.State, stamp(h.Since) + " (" + ago(now, h.Since) + ")", fmt.Sprint(h.Epoch)})
	}
	table(w, "HSM\tID\tSTATE\tSINCE\tEPOCH", rows)
	rows = nil
	for _, h := range st.HSMs {
		for _, cs := range h.Classes {
			rows = append(rows, []string{strconv.Itoa(h.Index), cs.Class, budget(cs.Budget), strconv.FormatFloat(cs.Used, 'f', 1, 64),
				fmt.Sprint(cs.Calls), fmt.Sprint(cs.Throttled), fmt.Sprint(cs.Retried), fmt.Sprint(cs.Failed)})
		}
	}
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintln(w, "no calls yet, no budgets")
	} else {
		table(w, "HSM\tCLASS\tBUDGET/S\tUSED/S\tCALLS\tTHROTTLED\tRETRIED\tFAULTS", rows)
	}
	fmt.Fprintln(w)
	if st.Plan == nil {
		fmt.Fprintln(w, "no fault plan")
		return
	}
	fmt.Fprintf(w, "fault plan: seed %d, loaded %s (%s)\n", st.Plan.Seed, stamp(st.Plan.Loaded), ago(now, st.Plan.Loaded))
	rows = nil
	for _, s := range st.Plan.Steps {
		rem := "-"
		if s.Remaining != 0 {
			rem = fmt.Sprint(s.Remaining)
		}
		rows = append(rows, []string{strconv.Itoa(s.Index), s.State, rem, s.Step})
	}
	table(w, "STEP\tSTATE\tREMAINING\tWHAT", rows)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

// ago is how long before now t was, rounded for reading.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String() + " ago"
	}
	return d.Round(time.Second).String() + " ago"
}

func budget(b float64) string {
	if b == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(b, 'f', -1, 64)
}

// clusterHSM sets HSM K's state: `cluster hsm down|up|degrade K`.
func clusterHSM(to cluster.State) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		return func(e *env) error {
			k, err := strconv.Atoi(e.operands[0])
			if err != nil || k < 0 {
				return usagef("K: %q is not an HSM index (0, 1, ...)", e.operands[0])
			}
			c, err := e.cluster()
			if err != nil {
				return err
			}
			if err := admin.SetHSMState(c, k, to); err != nil {
				return err
			}
			h := cluster.HSMStatus{Index: k, ID: cluster.StreamName(k), State: to.String()}
			if st := c.Status(); k < len(st.HSMs) {
				h = st.HSMs[k]
			}
			return e.emit(map[string]any{"hsm": h}, func(w io.Writer) {
				fmt.Fprintf(w, "HSM %d (%s) is %s (epoch %d)\n", k, h.ID, h.State, h.Epoch)
			})
		}
	}
}

// clusterPlanLoad: `cluster plan load FILE`. A plan that does not parse
// is reported with the parser's words (its position among them) and
// nothing is loaded.
func clusterPlanLoad(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.cluster()
		if err != nil {
			return err
		}
		name := e.operands[0]
		b, err := cluster.ReadPlanFile(name)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		p, err := clusterplan.Load(c, name, b)
		var pe *clusterplan.Error
		if errors.As(err, &pe) {
			return cliErrorf(codeBadPlan, "%s", pe.Msg)
		}
		if err != nil {
			return err
		}
		return e.emit(map[string]any{"loaded": name, "steps": len(p.Steps), "seed": p.Seed}, func(w io.Writer) {
			fmt.Fprintf(w, "loaded the fault plan %s: %d steps, seed %d; its clock starts now\n", name, len(p.Steps), p.Seed)
		})
	}
}

// position is where in b a JSON error is (clusterplan.Position).
var position = clusterplan.Position

func clusterPlanClear(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.cluster()
		if err != nil {
			return err
		}
		had := c.Status().Plan != nil
		if err := c.ClearPlan(); err != nil {
			return err
		}
		return e.emit(map[string]any{"cleared": had}, func(w io.Writer) {
			if !had {
				fmt.Fprintln(w, "no fault plan was loaded")
				return
			}
			fmt.Fprintln(w, "cleared the fault plan: its pending steps will not fire; HSM states stay as they are")
		})
	}
}

// clusterPlanShow prints the loaded plan as JSON (either way: it is a
// document one may save and load again), in the envelope with --json.
func clusterPlanShow(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.cluster()
		if err != nil {
			return err
		}
		p := c.Plan()
		return e.emit(map[string]any{"plan": p}, func(w io.Writer) {
			if p == nil {
				fmt.Fprintln(w, "no fault plan is loaded")
				return
			}
			b, _ := json.MarshalIndent(p, "", "  ")
			fmt.Fprintf(w, "%s\n", b)
		})
	}
}

func clusterReset(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.cluster()
		if err != nil {
			return err
		}
		if err := c.Reset(); err != nil {
			return err
		}
		return e.emit(map[string]any{"reset": true, "hsms": c.HSMs()}, func(w io.Writer) {
			fmt.Fprintf(w, "reset the cluster: %s up, counters zero, no fault plan\n", plural(c.HSMs(), "HSM"))
		})
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
