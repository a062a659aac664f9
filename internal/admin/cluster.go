package admin

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/token"
	"gohsm/token/cluster"
)

// The emulated cluster's operator checks (docs/cluster.md), shared by
// `gohsm cluster ...` and the console so that each refusal has one code
// and one wording.

// Cluster is slot s's emulated cluster, or a no_cluster error saying how
// to configure one.
func Cluster(s *token.Slot) (*cluster.Cluster, error) {
	c := s.Cluster()
	if c == nil {
		return nil, Errorf(CodeNoCluster, "slot %d has no emulated cluster: set hsms = N (or cluster = on) in its section", s.ID())
	}
	return c, nil
}

// SetHSMState sets HSM k's state (`cluster hsm down|up|degrade K`). An
// index the cluster does not have is a no_such_hsm error wrapping
// CKR_ARGUMENTS_BAD.
func SetHSMState(c *cluster.Cluster, k int, to cluster.State) error {
	if k < 0 || k >= c.HSMs() {
		return &Error{Code: CodeNoSuchHSM, Err: ck.CKR_ARGUMENTS_BAD,
			Msg: fmt.Sprintf("the cluster has %d HSMs (0 to %d): there is no HSM %d", c.HSMs(), c.HSMs()-1, k)}
	}
	return c.SetState(k, to)
}
