/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * String interning (intern.h): a small chained hash set of reference-counted
 * strings, so that a fork costs no string copy and a host running many
 * copies of one program in a few cgroups holds each string once.
 */
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "intern.h"

static uint32_t str_hash(const char *s, size_t n) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char) s[i]) * 16777619u;
        return h;
}

static void strset_grow(StrSet *set) {
        size_t n = set->nbuckets ? set->nbuckets * 2 : 256;
        RefStr **b = calloc(n, sizeof(*b));

        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < set->nbuckets; i++)
                for (RefStr *r = set->buckets[i], *next; r; r = next) {
                        next = r->next;
                        r->next = b[r->hash & (n - 1)];
                        b[r->hash & (n - 1)] = r;
                }
        free(set->buckets);
        set->buckets = b;
        set->nbuckets = n;
}

RefStr *strset_intern(StrSet *set, const char *s) {
        size_t n;
        uint32_t h;
        RefStr *r;

        if (!s)
                return NULL;
        n = strlen(s);
        h = str_hash(s, n);
        for (r = set->nbuckets ? set->buckets[h & (set->nbuckets - 1)] : NULL; r; r = r->next)
                if (r->hash == h && memcmp(r->s, s, n + 1) == 0) {
                        r->ref++;
                        return r;
                }
        if (set->n >= set->nbuckets)
                strset_grow(set);
        if (!set->nbuckets)
                return NULL;
        r = malloc(sizeof(*r) + n + 1);
        if (!r)
                return NULL;
        r->ref = 1;
        r->hash = h;
        memcpy(r->s, s, n + 1);
        r->next = set->buckets[h & (set->nbuckets - 1)];
        set->buckets[h & (set->nbuckets - 1)] = r;
        set->n++;
        return r;
}

RefStr *refstr_ref(RefStr *r) {
        if (r)
                r->ref++;
        return r;
}

RefStr *refstr_unref(StrSet *set, RefStr *r) {
        if (!r || --r->ref > 0)
                return NULL;
        for (RefStr **p = &set->buckets[r->hash & (set->nbuckets - 1)]; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        break;
                }
        set->n--;
        free(r);
        return NULL;
}

void refstr_set(StrSet *set, RefStr **slot, const char *s) {
        if (streq_ptr(refstr_get(*slot), s))
                return;
        refstr_unref(set, *slot);
        *slot = strset_intern(set, s);
}

void strset_done(StrSet *set) {
        free(set->buckets);
        *set = (StrSet){ 0 };
}
