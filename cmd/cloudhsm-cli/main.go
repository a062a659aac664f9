// Command cloudhsm-cli is AWS CloudHSM CLI's command set over a gohsm
// token (package gohsm/internal/cloudhsmcli): scripts written for
// CloudHSM CLI run unchanged against gohsm. `gohsm cloudhsm-cli ...` is the
// same program.
package main

import (
	"os"

	"gohsm/internal/cloudhsmcli"
)

func main() {
	os.Exit(cloudhsmcli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, cloudhsmcli.Options{Config: os.Getenv("GOHSM_CONF")}))
}
