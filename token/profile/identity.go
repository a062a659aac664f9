package profile

// Identity is what the profile decides about identity. (Filled in by the issue-14
// work on this area; see docs/cloudhsm.md.)
type Identity struct{}

func standardIdentity() Identity { return Identity{} }

func cloudhsmIdentity(s Settings) Identity { return Identity{} }
