package cloudhsmcli

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/token"
	"gohsm/token/cluster"
)

// TestHSMInfoStates: cluster hsm-info lists every emulated HSM of the
// slot with its stream and its state in the cloudhsmv2 API's words, as
// the shared state has it (set here by another module, as gohsm cluster
// hsm would): up ACTIVE, degraded and down DEGRADED with a message that
// tells them apart; serial numbers differ by the HSM's index.
func TestHSMInfoStates(t *testing.T) {
	e := newCLIEnv(t, "cloudhsm")
	f, err := os.OpenFile(e.conf, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("hsms = 3\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	m, err := token.OpenTool(e.conf)
	require.NoError(t, err)
	s, err := m.Slot(0)
	require.NoError(t, err)
	cl := s.Cluster()
	require.NotNil(t, cl)
	require.NoError(t, cl.SetState(1, cluster.Down))
	require.NoError(t, cl.SetState(2, cluster.Degraded))
	require.NoError(t, m.Close())

	r := e.run("", "", "", "cluster", "hsm-info")
	require.Equal(t, 0, r.code, r.stdout)
	_, data := envelope(t, r.stdout)
	var info struct{ HSMs []hsmInfo }
	require.NoError(t, json.Unmarshal(data, &info))
	require.Len(t, info.HSMs, 3)
	serials := map[string]bool{}
	for i, h := range info.HSMs {
		assert.Equal(t, cluster.StreamName(i), h.HSMID)
		assert.Equal(t, "hsm2m.medium", h.Model)
		serials[h.SerialNumber] = true
	}
	assert.Len(t, serials, 3)
	assert.Equal(t, [3]string{"ACTIVE", "DEGRADED", "DEGRADED"}, [3]string{info.HSMs[0].State, info.HSMs[1].State, info.HSMs[2].State})
	assert.Empty(t, info.HSMs[0].StateMessage)
	assert.Contains(t, info.HSMs[1].StateMessage, "down")
	assert.Contains(t, info.HSMs[2].StateMessage, "degraded")
}
