package cluster

// Plan is the fault plan every process follows now (as loaded, its
// times relative to its load), nil when none is loaded: what `gohsm
// cluster plan show` prints. Like Status, it fires the steps that are due.
func (c *Cluster) Plan() *Plan {
	cp := c.tick(c.now())
	if cp == nil {
		return nil
	}
	return cp.plan
}
