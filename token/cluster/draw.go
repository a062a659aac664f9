package cluster

// Deterministic draws: a random number is a pure function of (seed,
// stream, n) — splitmix64's finaliser over a counter — so the same plan,
// seed and call sequence give the same faults and latencies (a failing
// test replays), and processes need share nothing but the counters.

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw is a uniform number in [0, 1) for the n-th draw of stream.
func draw(seed, stream, n uint64) float64 {
	z := mix64(seed + 0x9e3779b97f4a7c15*(stream+1))
	z = mix64(z + 0x9e3779b97f4a7c15*(n+1))
	return float64(z>>11) / (1 << 53)
}
