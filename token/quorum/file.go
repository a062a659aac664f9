package quorum

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxFile bounds what a token or key file may hold: a token file with
// eight RSA-2048 signatures is under 4 KiB.
const MaxFile = 1 << 20

// ReadFile reads a token or public key file for the CLIs (cloudhsm-cli's
// --approval, --token, --public-key; gohsm's --approval): a regular file
// of at most MaxFile bytes (a FIFO or /dev/zero given by mistake is
// refused, not read forever). Its errors are bare ("no such file or
// directory"): the caller says which file.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFile {
		return nil, fmt.Errorf("larger than %d bytes", MaxFile)
	}
	return b, nil
}
