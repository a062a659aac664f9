package ck

import "fmt"

func name[T ~uint](m map[T]string, v T, family string) string {
	if s, ok := m[v]; ok {
		return s
	}
	return fmt.Sprintf("%s(0x%x)", family, uint(v))
}

func (r RV) String() string              { return name(rvNames(), r, "CKR") }
func (a AttributeType) String() string   { return name(attributeTypeNames(), a, "CKA") }
func (m MechanismType) String() string   { return name(mechanismTypeNames(), m, "CKM") }
func (o ObjectClass) String() string     { return name(objectClassNames(), o, "CKO") }
func (k KeyType) String() string         { return name(keyTypeNames(), k, "CKK") }
func (u UserType) String() string        { return name(userTypeNames(), u, "CKU") }
func (s State) String() string           { return name(stateNames(), s, "CKS") }
func (c CertificateType) String() string { return name(certificateTypeNames(), c, "CKC") }

// MechanismByName returns the mechanism with the given spec name (e.g. "CKM_AES_GCM").
func MechanismByName(s string) (MechanismType, bool) {
	for k, v := range mechanismTypeNames() {
		if v == s {
			return k, true
		}
	}
	return 0, false
}

// RVByName returns the return value with the given spec name (e.g.
// "CKR_DEVICE_ERROR").
func RVByName(s string) (RV, bool) {
	for k, v := range rvNames() {
		if v == s {
			return k, true
		}
	}
	return 0, false
}
