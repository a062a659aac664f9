package cluster

// Plan is the fault plan every process follows now (as loaded, its
// times relative to its load), nil when none is loaded: what `gohsm
// cluster plan show` prints.
func (c *Cluster) Plan() *Plan { return nil }
