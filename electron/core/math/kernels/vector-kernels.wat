;; WebAssembly SIMD kernels of the search hot path (compiled by `npm run generate:kernels` into
;; vector-kernels.generated.ts; a unit test checks the two agree). Plain f32x4 arithmetic with no
;; fused multiply-add and no relaxed SIMD, so a result is the same bits on every machine: the
;; embedding copy stores the checks these kernels compute and compares them on every read.
;;
;; Memory layout is the caller's (vector-kernels.ts): every row and the query are padded with zeros
;; to a multiple of 8 values, so the loops step 8 values at a time with two accumulators each.
(module
  (memory (export "memory") 1)

  ;; For each of $count float16 rows (little-endian binary16, $stride bytes apart, starting at $rows):
  ;; the dot product with the float32 query at $query, the sum of squares of the decoded values, and
  ;; the wrapping 32-bit sum of the raw 16-bit words (the row's integrity check). Writes 12 bytes a
  ;; row at $out: f32 dot, f32 squares, i32 word sum. $stride / 2 values are read from each row.
  (func (export "dotHalfRows") (param $query i32) (param $rows i32) (param $count i32) (param $stride i32) (param $out i32)
    (local $p i32) (local $end i32) (local $q i32)
    (local $dotA v128) (local $dotB v128) (local $sqA v128) (local $sqB v128) (local $words v128)
    (local $h v128) (local $f v128)
    (block $done
      (loop $eachRow
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $p (local.get $rows))
        (local.set $end (i32.add (local.get $rows) (local.get $stride)))
        (local.set $q (local.get $query))
        (local.set $dotA (v128.const i32x4 0 0 0 0))
        (local.set $dotB (v128.const i32x4 0 0 0 0))
        (local.set $sqA (v128.const i32x4 0 0 0 0))
        (local.set $sqB (v128.const i32x4 0 0 0 0))
        (local.set $words (v128.const i32x4 0 0 0 0))
        (loop $eachEight
          ;; values 0-3: binary16 -> binary32 by moving exponent and mantissa up 13 bits and scaling
          ;; by 2^112 (exact for normal and subnormal halves), then putting the sign back.
          (local.set $h (v128.load16x4_u (local.get $p)))
          (local.set $words (i32x4.add (local.get $words) (local.get $h)))
          (local.set $f
            (v128.or
              (f32x4.mul
                (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)) (i32.const 13))
                (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
              (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16))))
          (local.set $dotA (f32x4.add (local.get $dotA) (f32x4.mul (v128.load (local.get $q)) (local.get $f))))
          (local.set $sqA (f32x4.add (local.get $sqA) (f32x4.mul (local.get $f) (local.get $f))))
          ;; values 4-7
          (local.set $h (v128.load16x4_u offset=8 (local.get $p)))
          (local.set $words (i32x4.add (local.get $words) (local.get $h)))
          (local.set $f
            (v128.or
              (f32x4.mul
                (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)) (i32.const 13))
                (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
              (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16))))
          (local.set $dotB (f32x4.add (local.get $dotB) (f32x4.mul (v128.load offset=16 (local.get $q)) (local.get $f))))
          (local.set $sqB (f32x4.add (local.get $sqB) (f32x4.mul (local.get $f) (local.get $f))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $q (i32.add (local.get $q) (i32.const 32)))
          (br_if $eachEight (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $dotA (f32x4.add (local.get $dotA) (local.get $dotB)))
        (local.set $sqA (f32x4.add (local.get $sqA) (local.get $sqB)))
        (f32.store (local.get $out)
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $dotA)) (f32x4.extract_lane 1 (local.get $dotA)))
            (f32.add (f32x4.extract_lane 2 (local.get $dotA)) (f32x4.extract_lane 3 (local.get $dotA)))))
        (f32.store offset=4 (local.get $out)
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sqA)) (f32x4.extract_lane 1 (local.get $sqA)))
            (f32.add (f32x4.extract_lane 2 (local.get $sqA)) (f32x4.extract_lane 3 (local.get $sqA)))))
        (i32.store offset=8 (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $words)) (i32x4.extract_lane 1 (local.get $words)))
            (i32.add (i32x4.extract_lane 2 (local.get $words)) (i32x4.extract_lane 3 (local.get $words)))))
        (local.set $out (i32.add (local.get $out) (i32.const 12)))
        (local.set $rows (local.get $end))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $eachRow))))

  ;; The same for float32 rows ($stride / 4 values each): dot, squares, and the wrapping 32-bit sum
  ;; of the raw 32-bit words.
  (func (export "dotFloatRows") (param $query i32) (param $rows i32) (param $count i32) (param $stride i32) (param $out i32)
    (local $p i32) (local $end i32) (local $q i32)
    (local $dotA v128) (local $dotB v128) (local $sqA v128) (local $sqB v128) (local $words v128)
    (local $f v128)
    (block $done
      (loop $eachRow
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $p (local.get $rows))
        (local.set $end (i32.add (local.get $rows) (local.get $stride)))
        (local.set $q (local.get $query))
        (local.set $dotA (v128.const i32x4 0 0 0 0))
        (local.set $dotB (v128.const i32x4 0 0 0 0))
        (local.set $sqA (v128.const i32x4 0 0 0 0))
        (local.set $sqB (v128.const i32x4 0 0 0 0))
        (local.set $words (v128.const i32x4 0 0 0 0))
        (loop $eachEight
          (local.set $f (v128.load (local.get $p)))
          (local.set $words (i32x4.add (local.get $words) (local.get $f)))
          (local.set $dotA (f32x4.add (local.get $dotA) (f32x4.mul (v128.load (local.get $q)) (local.get $f))))
          (local.set $sqA (f32x4.add (local.get $sqA) (f32x4.mul (local.get $f) (local.get $f))))
          (local.set $f (v128.load offset=16 (local.get $p)))
          (local.set $words (i32x4.add (local.get $words) (local.get $f)))
          (local.set $dotB (f32x4.add (local.get $dotB) (f32x4.mul (v128.load offset=16 (local.get $q)) (local.get $f))))
          (local.set $sqB (f32x4.add (local.get $sqB) (f32x4.mul (local.get $f) (local.get $f))))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $q (i32.add (local.get $q) (i32.const 32)))
          (br_if $eachEight (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $dotA (f32x4.add (local.get $dotA) (local.get $dotB)))
        (local.set $sqA (f32x4.add (local.get $sqA) (local.get $sqB)))
        (f32.store (local.get $out)
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $dotA)) (f32x4.extract_lane 1 (local.get $dotA)))
            (f32.add (f32x4.extract_lane 2 (local.get $dotA)) (f32x4.extract_lane 3 (local.get $dotA)))))
        (f32.store offset=4 (local.get $out)
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sqA)) (f32x4.extract_lane 1 (local.get $sqA)))
            (f32.add (f32x4.extract_lane 2 (local.get $sqA)) (f32x4.extract_lane 3 (local.get $sqA)))))
        (i32.store offset=8 (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $words)) (i32x4.extract_lane 1 (local.get $words)))
            (i32.add (i32x4.extract_lane 2 (local.get $words)) (i32x4.extract_lane 3 (local.get $words)))))
        (local.set $out (i32.add (local.get $out) (i32.const 12)))
        (local.set $rows (local.get $end))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $eachRow))))

  ;; The in-memory sketch's pre-rank (vector-kernels.ts, SketchTable): each row is 4-bit codes, two per
  ;; byte, $stride bytes (16 per 32 values: byte j of a 32-value block holds value j in its low nibble
  ;; and value 16 + j in its high nibble); the query is 16-bit integers in natural order, 64 bytes per
  ;; block, zero past the width. For each of $count row numbers (i32) at $rowList, writes 8 bytes at
  ;; $out: the i32 dot product of codes and query (at most 15 × 2047 × width, far inside i32 for any
  ;; encoder width), and the wrapping 32-bit sum of the row's raw 32-bit words (its integrity check).
  ;; Integer arithmetic throughout, so the result is exact and the same on every machine.
  (func (export "sketchDots") (param $query i32) (param $codes i32) (param $stride i32) (param $rowList i32) (param $count i32) (param $out i32)
    (local $p i32) (local $end i32) (local $q i32)
    (local $accA v128) (local $accB v128) (local $words v128) (local $b v128) (local $lo v128) (local $hi v128)
    (block $done
      (loop $eachRow
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $p (i32.add (local.get $codes) (i32.mul (i32.load (local.get $rowList)) (local.get $stride))))
        (local.set $end (i32.add (local.get $p) (local.get $stride)))
        (local.set $q (local.get $query))
        (local.set $accA (v128.const i32x4 0 0 0 0))
        (local.set $accB (v128.const i32x4 0 0 0 0))
        (local.set $words (v128.const i32x4 0 0 0 0))
        (loop $eachBlock
          (local.set $b (v128.load (local.get $p)))
          (local.set $words (i32x4.add (local.get $words) (local.get $b)))
          (local.set $lo (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
          (local.set $hi (i8x16.shr_u (local.get $b) (i32.const 4)))
          (local.set $accA (i32x4.add (local.get $accA)
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (v128.load (local.get $q)))))
          (local.set $accB (i32x4.add (local.get $accB)
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (v128.load offset=16 (local.get $q)))))
          (local.set $accA (i32x4.add (local.get $accA)
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $hi)) (v128.load offset=32 (local.get $q)))))
          (local.set $accB (i32x4.add (local.get $accB)
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $hi)) (v128.load offset=48 (local.get $q)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $q (i32.add (local.get $q) (i32.const 64)))
          (br_if $eachBlock (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $accA (i32x4.add (local.get $accA) (local.get $accB)))
        (i32.store (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $accA)) (i32x4.extract_lane 1 (local.get $accA)))
            (i32.add (i32x4.extract_lane 2 (local.get $accA)) (i32x4.extract_lane 3 (local.get $accA)))))
        (i32.store offset=4 (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $words)) (i32x4.extract_lane 1 (local.get $words)))
            (i32.add (i32x4.extract_lane 2 (local.get $words)) (i32x4.extract_lane 3 (local.get $words)))))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (local.set $rowList (i32.add (local.get $rowList) (i32.const 4)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $eachRow))))

  ;; One query through a fixed affine map, out = query · W + bias, for the projected index's queries.
  ;; W is bfloat16, laid out by the caller (vector-kernels.ts QueryProjector) in blocks of 32 output
  ;; columns: block b's 64 bytes for input row i are at $weights + (b * $inputDim + i) * 64, and each
  ;; 16-byte group holds columns j..j+3 in its even 16-bit halves and j+4..j+7 in its odd halves, so
  ;; one shift and one mask turn a load into two f32x4 of weights (bfloat16 is float32's top half).
  ;; The query's nonzero values are first compacted into (value, row offset) pairs at $pairs (8 bytes
  ;; each, room for $inputDim of them): a post-ReLU embedding is ~40% exact zeros, and skipping them
  ;; gives the same bits as multiplying them (an accumulator starts at +0, and adding ±0 to it never
  ;; changes it); $keepZeros = 1 keeps them all (the dense product, to check that claim). Then each
  ;; block keeps its 32 sums in 8 registers over every kept value, in row order, and stores them once
  ;; with the bias added ($bias and $out hold $blocks * 32 floats).
  (func (export "projectQuery")
    (param $query i32) (param $inputDim i32) (param $keepZeros i32) (param $pairs i32) (param $weights i32) (param $blocks i32) (param $bias i32) (param $out i32)
    (local $i i32) (local $value f32) (local $p i32) (local $end i32) (local $w i32) (local $blockBase i32) (local $blockBytes i32)
    (local $s v128) (local $v v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    ;; Branch-free compaction: every pair is written, the end moves on only past a kept value.
    (local.set $p (local.get $pairs))
    (block $compacted
      (loop $eachInput
        (br_if $compacted (i32.ge_u (local.get $i) (local.get $inputDim)))
        (local.set $value (f32.load (i32.add (local.get $query) (i32.shl (local.get $i) (i32.const 2)))))
        (f32.store (local.get $p) (local.get $value))
        (i32.store offset=4 (local.get $p) (i32.shl (local.get $i) (i32.const 6)))
        (local.set $p (i32.add (local.get $p) (i32.shl (i32.or (f32.ne (local.get $value) (f32.const 0)) (local.get $keepZeros)) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $eachInput)))
    (local.set $end (local.get $p))
    (local.set $blockBase (local.get $weights))
    (local.set $blockBytes (i32.shl (local.get $inputDim) (i32.const 6)))
    (block $done
      (loop $eachBlock
        (br_if $done (i32.eqz (local.get $blocks)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $a4 (v128.const i32x4 0 0 0 0))
        (local.set $a5 (v128.const i32x4 0 0 0 0))
        (local.set $a6 (v128.const i32x4 0 0 0 0))
        (local.set $a7 (v128.const i32x4 0 0 0 0))
        (local.set $p (local.get $pairs))
        (if (i32.lt_u (local.get $p) (local.get $end))
          (then
            (loop $eachPair
              (local.set $s (v128.load32_splat (local.get $p)))
              (local.set $w (i32.add (local.get $blockBase) (i32.load offset=4 (local.get $p))))
              (local.set $v (v128.load (local.get $w)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (i32x4.shl (local.get $v) (i32.const 16)))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.and (local.get $v) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))))
              (local.set $v (v128.load offset=16 (local.get $w)))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (i32x4.shl (local.get $v) (i32.const 16)))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.and (local.get $v) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))))
              (local.set $v (v128.load offset=32 (local.get $w)))
              (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (i32x4.shl (local.get $v) (i32.const 16)))))
              (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (v128.and (local.get $v) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))))
              (local.set $v (v128.load offset=48 (local.get $w)))
              (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (i32x4.shl (local.get $v) (i32.const 16)))))
              (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $s) (v128.and (local.get $v) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))))
              (local.set $p (i32.add (local.get $p) (i32.const 8)))
              (br_if $eachPair (i32.lt_u (local.get $p) (local.get $end))))))
        (v128.store (local.get $out) (f32x4.add (local.get $a0) (v128.load (local.get $bias))))
        (v128.store offset=16 (local.get $out) (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $bias))))
        (v128.store offset=32 (local.get $out) (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $bias))))
        (v128.store offset=48 (local.get $out) (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $bias))))
        (v128.store offset=64 (local.get $out) (f32x4.add (local.get $a4) (v128.load offset=64 (local.get $bias))))
        (v128.store offset=80 (local.get $out) (f32x4.add (local.get $a5) (v128.load offset=80 (local.get $bias))))
        (v128.store offset=96 (local.get $out) (f32x4.add (local.get $a6) (v128.load offset=96 (local.get $bias))))
        (v128.store offset=112 (local.get $out) (f32x4.add (local.get $a7) (v128.load offset=112 (local.get $bias))))
        (local.set $out (i32.add (local.get $out) (i32.const 128)))
        (local.set $bias (i32.add (local.get $bias) (i32.const 128)))
        (local.set $blockBase (i32.add (local.get $blockBase) (local.get $blockBytes)))
        (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))
        (br $eachBlock)))))
