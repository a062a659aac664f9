package ossl

import "os"

// disabled is set by GOHSM_CRYPTO=go in the environment the process
// started with: every operation then stays in Go's crypto (for comparing
// the two, or when a host's libcrypto must not be touched).
var disabled = os.Getenv("GOHSM_CRYPTO") == "go"
