// Package clusterplan loads a fault plan into a slot's emulated cluster
// for gohsm's `cluster plan load` and the console's PUT
// /api/v1/cluster/plan, so that both tell a plan's mistakes from the
// cluster's failures the same way.
package clusterplan

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gohsm/token/cluster"
)

// Error is a plan that is not valid: it does not parse, or names what the
// cluster does not have. Msg names the plan and the place.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Load parses b, the text of the plan called name, and loads it into c,
// its clock starting now. A plan's mistake is an *Error worded with the
// parser's words (and its line and column); a lock or file error is not.
func Load(c *cluster.Cluster, name string, b []byte) (*cluster.Plan, error) {
	p, err := cluster.ParsePlan(b)
	if err != nil {
		return nil, &Error{fmt.Sprintf("%s%s: %v", name, Position(b, err), err)}
	}
	if err := c.LoadPlan(p); err != nil {
		// What LoadPlan checks beyond ParsePlan (an HSM the cluster
		// does not have) is the plan's mistake too; a lock error is not.
		if strings.HasPrefix(err.Error(), "cluster: plan:") {
			return nil, &Error{fmt.Sprintf("%s: %v", name, err)}
		}
		return nil, err
	}
	return p, nil
}

// Position is ":LINE:COLUMN" of a JSON syntax or type error in b, the
// last byte the decoder read (it gives a byte offset, people want a
// line), else "".
func Position(b []byte, err error) string {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return ""
	}
	off = min(max(off-1, 0), int64(len(b)))
	line, col := 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf(":%d:%d", line, col)
}
