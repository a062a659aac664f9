package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"gohsm/internal/ck"
	"gohsm/internal/clusterplan"
	"gohsm/token/cluster"
)

// The cluster endpoints: the session's slot's emulated cluster, as the
// CLI's cluster commands drive it (cmd/gohsm/cluster.go). The CLI needs
// no login for them; the console needs its session, nothing more.

func (s *Server) cluster(c *call) (*cluster.Cluster, error) {
	sl, err := c.ws.m.Slot(c.ws.slot)
	if err != nil {
		return nil, err
	}
	cl := sl.Cluster()
	if cl == nil {
		return nil, errorf(http.StatusNotFound, codeNoCluster,
			"slot %d has no emulated cluster: set hsms = N (or cluster = on) in its section", c.ws.slot)
	}
	return cl, nil
}

func (s *Server) clusterStatus(c *call) (int, any, error) {
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cl.Status(), nil
}

type hsmRequest struct {
	State string `json:"state"`
}

func (s *Server) clusterHSM(c *call) (int, any, error) {
	var req hsmRequest
	if err := decodeJSON(c.r, maxBody, &req); err != nil {
		return 0, nil, err
	}
	to, ok := cluster.ParseState(req.State)
	if !ok {
		return 0, nil, badRequest("state %q: want up, down or degraded", req.State)
	}
	ks := c.r.PathValue("k")
	k, err := strconv.Atoi(ks)
	if err != nil || k < 0 {
		return 0, nil, badRequest("%q is not an HSM index (0, 1, ...)", ks)
	}
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	if k >= cl.HSMs() {
		return 0, nil, &apiError{status: http.StatusNotFound, code: codeNoSuchHSM, err: ck.CKR_ARGUMENTS_BAD,
			msg: fmt.Sprintf("the cluster has %d HSMs (0 to %d): there is no HSM %d", cl.HSMs(), cl.HSMs()-1, k)}
	}
	if err := cl.SetState(k, to); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cl.Status(), nil
}

func (s *Server) clusterPlan(c *call) (int, any, error) {
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	p := cl.Plan()
	if p == nil {
		return 0, nil, errorf(http.StatusNotFound, codeNotFound, "no fault plan is loaded")
	}
	return http.StatusOK, map[string]any{"plan": p}, nil
}

func (s *Server) clusterPlanLoad(c *call) (int, any, error) {
	b, err := readBody(c.r, maxPlanBody)
	if err != nil {
		return 0, nil, err
	}
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	_, err = clusterplan.Load(cl, "body", b)
	var pe *clusterplan.Error
	if errors.As(err, &pe) {
		return 0, nil, errorf(http.StatusBadRequest, codeBadPlan, "%s", pe.Msg)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cl.Status(), nil
}

func (s *Server) clusterPlanClear(c *call) (int, any, error) {
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	if err := cl.ClearPlan(); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cl.Status(), nil
}

func (s *Server) clusterReset(c *call) (int, any, error) {
	cl, err := s.cluster(c)
	if err != nil {
		return 0, nil, err
	}
	if err := cl.Reset(); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cl.Status(), nil
}
