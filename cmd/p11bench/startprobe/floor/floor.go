// Command floor is the smallest Go PKCS#11 module that startprobe can load:
// built with -buildmode=c-shared it answers C_Initialize, C_GetSlotList,
// C_GetTokenInfo and C_Finalize from Go (one slot, an empty token info)
// and links nothing else. Its start-up is the Go runtime's own, the floor
// no Go module can beat (docs/bench.md, "Start-up"):
//
//	go build -buildmode=c-shared -trimpath -o build/libfloor.so ./cmd/p11bench/startprobe/floor
//	build/startprobe build/libfloor.so
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../../include
#include <string.h>
#include "pkcs11.h"

CK_RV floorInitialize(CK_VOID_PTR);
CK_RV floorFinalize(CK_VOID_PTR);
CK_RV floorSlots(CK_BBOOL, CK_SLOT_ID_PTR, CK_ULONG_PTR);
CK_RV floorTokenInfo(CK_SLOT_ID, CK_TOKEN_INFO_PTR);

*/
import "C"

import "unsafe"

//export floorInitialize
func floorInitialize(C.CK_VOID_PTR) C.CK_RV { return C.CKR_OK }

//export floorFinalize
func floorFinalize(C.CK_VOID_PTR) C.CK_RV { return C.CKR_OK }

//export floorSlots
func floorSlots(_ C.CK_BBOOL, list C.CK_SLOT_ID_PTR, n C.CK_ULONG_PTR) C.CK_RV {
	if list != nil {
		if *n < 1 {
			*n = 1
			return C.CKR_BUFFER_TOO_SMALL
		}
		*list = 0
	}
	*n = 1
	return C.CKR_OK
}

//export floorTokenInfo
func floorTokenInfo(_ C.CK_SLOT_ID, ti C.CK_TOKEN_INFO_PTR) C.CK_RV {
	b := unsafe.Slice((*byte)(unsafe.Pointer(ti)), unsafe.Sizeof(*ti))
	clear(b)
	return C.CKR_OK
}

func main() {}
