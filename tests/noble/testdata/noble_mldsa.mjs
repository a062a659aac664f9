// noble_mldsa.mjs: the @noble/post-quantum side of tests/noble. It reads
// one request a line on stdin and answers one line on stdout, so that the
// Go test can put the same questions to it and to the module (through
// p11_mldsa.c) and compare. Fields are space separated; byte strings are
// hex, "-" when empty.
//
//   keygen SET SEED          -> "key PK SK" (FIPS 204 ML-DSA.KeyGen_internal(ξ))
//   sign SET MODE HASH DET SEED CTX MSG -> "sig SIG"
//   verify SET MODE HASH SEED CTX MSG SIG -> "ok" | "bad"
//   verifypk SET MODE HASH PK CTX MSG SIG -> "ok" | "bad" (a given public
//                            key: the published vectors' cases)
//
// SET is 44, 65 or 87; MODE "pure" (ML-DSA.Sign, FIPS 204 Algorithm 2) or
// "prehash" (HashML-DSA.Sign, Algorithm 4, over MSG hashed by noble with
// HASH, a @noble/hashes name); DET 1 signs deterministically (rnd = 0^32,
// noble's extraEntropy: false), 0 hedged (fresh randomness).
//
// noble's ml_dsa*.prehash(hash) refuses a hash weaker than the parameter
// set's security level (FIPS 204 section 5.4 asks for "at least λ bits";
// PKCS #11 3.2 does not restrict the pairing, and the module offers every
// pair). For those pairs this script formats M' with noble's own
// getMessagePrehash (the function prehash() uses, without the strength
// check) and signs/verifies it with noble's internal ML-DSA; on exit it
// prints "fallback SET/HASH ..." naming those pairs. Errors print
// "err MESSAGE".
import { createInterface } from 'node:readline';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { getMessagePrehash } from '@noble/post-quantum/utils.js';
import { sha224, sha256, sha384, sha512, sha512_224, sha512_256 } from '@noble/hashes/sha2.js';
import { sha3_224, sha3_256, sha3_384, sha3_512, shake128_32, shake256_64 } from '@noble/hashes/sha3.js';

const sets = { 44: ml_dsa44, 65: ml_dsa65, 87: ml_dsa87 };
const hashes = { sha224, sha256, sha384, sha512, sha512_224, sha512_256, sha3_224, sha3_256, sha3_384, sha3_512, shake128_32, shake256_64 };

const hex = (s) => (s === '-' ? new Uint8Array(0) : Uint8Array.from(Buffer.from(s, 'hex')));
const unhex = (b) => (b.length === 0 ? '-' : Buffer.from(b).toString('hex'));

const keys = new Map();
function key(set, seed) {
	const id = set + ':' + seed;
	if (!keys.has(id)) keys.set(id, sets[set].keygen(hex(seed)));
	return keys.get(id);
}

const fallbacks = new Set();

// signer returns sign(msg, sk, opts) and verify(sig, msg, pk, ctx) for a mode.
function signer(set, mode, hashName) {
	const ml = sets[set];
	if (!ml) throw new Error('unknown set ' + set);
	if (mode === 'pure') {
		return {
			sign: (msg, sk, ctx, extraEntropy) => ml.sign(msg, sk, { context: ctx, extraEntropy }),
			verify: (sig, msg, pk, ctx) => ml.verify(sig, msg, pk, { context: ctx }),
		};
	}
	if (mode !== 'prehash') throw new Error('unknown mode ' + mode);
	const h = hashes[hashName];
	if (!h) throw new Error('unknown hash ' + hashName);
	try {
		const ph = ml.prehash(h);
		return {
			sign: (msg, sk, ctx, extraEntropy) => ph.sign(msg, sk, { context: ctx, extraEntropy }),
			verify: (sig, msg, pk, ctx) => ph.verify(sig, msg, pk, { context: ctx }),
		};
	} catch (e) {
		if (!/security strength too low/.test(String(e))) throw e;
	}
	fallbacks.add(set + '/' + hashName);
	return {
		sign: (msg, sk, ctx, extraEntropy) =>
			ml.internal.sign(getMessagePrehash(h, msg, ctx), sk, { extraEntropy, externalMu: false }),
		verify: (sig, msg, pk, ctx) =>
			ml.internal.verify(sig, getMessagePrehash(h, msg, ctx), pk, { externalMu: false }),
	};
}

function answer(line) {
	const f = line.trim().split(' ');
	switch (f[0]) {
		case 'keygen': {
			const k = key(f[1], f[2]);
			return 'key ' + unhex(k.publicKey) + ' ' + unhex(k.secretKey);
		}
		case 'sign': {
			const [, set, mode, hashName, det, seed, ctx, msg] = f;
			const s = signer(set, mode, hashName);
			const sig = s.sign(hex(msg), key(set, seed).secretKey, hex(ctx), det === '1' ? false : undefined);
			return 'sig ' + unhex(sig);
		}
		case 'verify': {
			const [, set, mode, hashName, seed, ctx, msg, sig] = f;
			const s = signer(set, mode, hashName);
			return s.verify(hex(sig), hex(msg), key(set, seed).publicKey, hex(ctx)) ? 'ok' : 'bad';
		}
		case 'verifypk': {
			const [, set, mode, hashName, pk, ctx, msg, sig] = f;
			const s = signer(set, mode, hashName);
			return s.verify(hex(sig), hex(msg), hex(pk), hex(ctx)) ? 'ok' : 'bad';
		}
	}
	throw new Error('unknown request ' + f[0]);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
	let out;
	try {
		out = answer(line);
	} catch (e) {
		out = 'err ' + String(e && e.message ? e.message : e).replace(/\s+/g, ' ');
	}
	process.stdout.write(out + '\n');
});
rl.on('close', () => {
	process.stdout.write('fallback ' + [...fallbacks].join(' ') + '\n');
});
