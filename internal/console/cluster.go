package console

import (
	"errors"
	"net/http"
	"strconv"

	"gohsm/internal/admin"
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
	return admin.Cluster(sl)
}

// clusterAct runs act (nil: nothing) on the session's cluster and answers
// its status, as the CLI's cluster commands print it.
func (s *Server) clusterAct(act func(*cluster.Cluster) error) handler {
	return func(c *call) (int, any, error) {
		cl, err := s.cluster(c)
		if err != nil {
			return 0, nil, err
		}
		if act != nil {
			if err := act(cl); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusOK, cl.Status(), nil
	}
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
	if err := admin.SetHSMState(cl, k, to); err != nil {
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
