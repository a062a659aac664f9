package mechanisms

import "crypto/rsa"

// ModulusBytes is the byte length of an RSA key's modulus (0 for other keys):
// the size of raw RSA outputs such as C_SignRecover's.
func ModulusBytes(key any) int {
	switch k := unprepared(key).(type) {
	case *rsa.PrivateKey:
		return k.Size()
	case *rsa.PublicKey:
		return k.Size()
	}
	return 0
}
