/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * String interning for the process table: every distinct exe, cmdline,
 * cgroup and unit is held once, however many entries name it, found by
 * content and freed when the last reference goes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct RefStr RefStr;

/* Read through refstr_get(); the rest is intern.c's. */
struct RefStr {
        unsigned ref;
        uint32_t hash;
        RefStr *next; /* in its bucket */
        char s[];
};

typedef struct StrSet {
        RefStr **buckets;
        size_t nbuckets; /* power of two, or 0 before the first string */
        size_t n;        /* distinct strings held */
} StrSet;

/* A reference to the interned copy of s: NULL for NULL, or out of memory
 * (the caller then knows the string as unknown). */
RefStr *strset_intern(StrSet *set, const char *s);
RefStr *refstr_ref(RefStr *r);
/* Drop a reference; the last one frees the string. Returns NULL. */
RefStr *refstr_unref(StrSet *set, RefStr *r);
static inline const char *refstr_get(const RefStr *r) {
        return r ? r->s : NULL;
}
/* Replace *slot with a reference to s, unless it already says s. */
void refstr_set(StrSet *set, RefStr **slot, const char *s);
/* Free the buckets; every reference must have been dropped. */
void strset_done(StrSet *set);
