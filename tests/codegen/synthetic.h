/* SPDX-License-Identifier: MIT */
/* A small header with every construct the generator must translate. */
#ifndef SYNTHETIC_H
#define SYNTHETIC_H

#include <linux/types.h>

#define SYN_ALL (SYN_ONE | SYN_HIGH)	/* refers to an enum defined below */
#define SYN_MASK ~(1 << 3)
#define SYN_ALIGN(len) (((len) + 3) & ~3)
#define SYN_HDRLEN ((int) SYN_ALIGN(sizeof(struct syn_outer)))
#define SYN_NAME "not a number"

/* The kinds of thing. */
enum syn_kind {
	SYN_ZERO,
	SYN_ONE = 0x1,	/* the first */
	SYN_NEXT,
	SYN_HIGH = 0x80000000
};

static __inline__ int syn_helper(int x)
{
	return x + SYN_ALL;
}

/**
 * struct syn_outer - every kind of member, with a "kernel-doc" comment
 * @a: the first (its own comment wins over this one)
 * @kind: what it is,
 *        over two lines
 *
 * Quotes """ and a backslash \ survive into the docstring.
 */
struct syn_outer {
	enum syn_kind kind;
	__u32 a, b;		/* two on one line */
	__u64 __attribute__((aligned(8))) stamp;
		/* nanoseconds */
	union {
		struct syn_named {
			__kernel_pid_t pid;
			char name[16];
		} named;
		struct {
			__s16 small;
		} anon;
		union {
			__u32 as_u32;
			__u8 as_bytes[4];
		} raw;
	} body;
	enum syn_local { SYN_LOCAL_A = 5, SYN_LOCAL_B } local;
	__u8 tail[];
};

#endif /* SYNTHETIC_H */
