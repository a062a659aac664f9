// Command libgohsm is the shared library's main package: built with
// -buildmode=c-shared it yields libgohsm.so, whose C_* symbols come from the
// pkcs11 package's C shim.
package main

import _ "gohsm/pkcs11"

func main() {}
