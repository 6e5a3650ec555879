/* SPDX-License-Identifier: MIT */
/*
 * list.h: an intrusive, circular, doubly-linked list (the Linux-kernel / BSD kind). Header-only.
 *
 * An object that sits on a list embeds a `struct list_node`; the list itself is a head, which is
 * a node of its own that no object contains. Every operation that touches one element is O(1):
 * append at the tail, push at the head, and unlink from anywhere without knowing the head or
 * walking to the element. container_of() gets from the node back to the object.
 *
 *	struct job { int id; struct list_node link; };
 *	struct list_node queue;
 *	struct list_node *n, *tmp;
 *
 *	list_init(&queue);
 *	list_append(&queue, &job->link);
 *	list_for_each_safe(n, tmp, &queue) {
 *		struct job *j = container_of(n, struct job, link);
 *
 *		list_unlink(&j->link);
 *		free(j);
 *	}
 *
 * Invariants: a head must be list_init()ed (or LIST_HEAD_INIT) before use, and an empty head
 * points at itself. An element node is "unlinked" when it is all zero (as xcalloc leaves it) or
 * after list_unlink(); list_linked() tells, and list_unlink() of an unlinked node does nothing,
 * so an object can be removed from "its queue, if any" without a separate flag. A node is on at
 * most one list at a time: appending a linked node is a programmer error (assert). Not
 * thread-safe; the list does not own its elements and never allocates.
 */
#pragma once

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

/* The object of type `type` whose member `member` is the node at ptr. */
#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

/* The same for a const node: a const object. */
#define container_of_const(ptr, type, member) \
	((const type *)(const void *)((const char *)(ptr)-offsetof(type, member)))

struct list_node {
	struct list_node *prev;
	struct list_node *next;
};

/* A static initialiser for a head named name: `struct list_node q = LIST_HEAD_INIT(q);`. */
#define LIST_HEAD_INIT(name)                     \
	{                                        \
		.prev = &(name), .next = &(name) \
	}

/* Makes head an empty list. */
static inline void list_init(struct list_node *head)
{
	head->prev = head;
	head->next = head;
}

/* True when the list at head has no elements. */
static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* True when the element node is on a list (false when zeroed or unlinked). */
static inline bool list_linked(const struct list_node *node)
{
	return node->next != NULL;
}

/* Puts node between the two adjacent nodes prev and next. */
static inline void list_insert_between(struct list_node *node, struct list_node *prev,
                                       struct list_node *next)
{
	assert(!list_linked(node));
	node->prev = prev;
	node->next = next;
	prev->next = node;
	next->prev = node;
}

/* Adds node at the tail of the list at head. O(1). node must not be linked. */
static inline void list_append(struct list_node *head, struct list_node *node)
{
	list_insert_between(node, head->prev, head);
}

/* Adds node at the front of the list at head. O(1). node must not be linked. */
static inline void list_push(struct list_node *head, struct list_node *node)
{
	list_insert_between(node, head, head->next);
}

/* Takes node off whatever list it is on, and leaves it unlinked (zeroed). O(1); a no-op when node
 * is not linked. Never pass a head. */
static inline void list_unlink(struct list_node *node)
{
	if (!list_linked(node))
		return;
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = NULL;
	node->next = NULL;
}

/* The first element of the list at head, or NULL when it is empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->next;
}

/* The last element of the list at head, or NULL when it is empty. */
static inline struct list_node *list_last(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->prev;
}

/* The element after node on the list at head, or NULL when node is the last. */
static inline struct list_node *list_next(const struct list_node *head,
                                          const struct list_node *node)
{
	return node->next == head ? NULL : node->next;
}

/* Unlinks and returns the first element of the list at head, or NULL when it is empty. */
static inline struct list_node *list_pop(struct list_node *head)
{
	struct list_node *node = list_first(head);

	if (node != NULL)
		list_unlink(node);
	return node;
}

/* The number of elements. O(n): for tests and diagnostics, not for hot paths. */
static inline size_t list_count(const struct list_node *head)
{
	size_t n = 0;

	for (const struct list_node *p = head->next; p != head; p = p->next)
		n++;
	return n;
}

/* Walks pos over every element node of the list at head, front to back. The body must not unlink
 * pos; use list_for_each_safe for that. */
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Like list_for_each, but the body may unlink (and free) pos: tmp holds the next node. The body
 * must not unlink any other element of the same list. */
#define list_for_each_safe(pos, tmp, head)                               \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)
