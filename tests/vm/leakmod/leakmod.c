// SPDX-License-Identifier: GPL-2.0
/*
 * leakmod: leaks kernel memory on demand, for sysak's end-to-end tests.
 *
 * echo slab|vmalloc|page > /sys/module/leakmod/parameters/trigger starts
 * leaking that kind at a steady rate for duration_ms, so the leak happens
 * inside a tracing window. Each kind is allocated by its own named
 * noinline function, which is what sysak must name:
 *   leakmod_kmalloc_one   kmalloc(184) objects (kmalloc-192) carrying a pointer to the
 *                         module's ops structure and a recognisable pattern
 *                         (the shape of the original sysak case), an owner in
 *                         kmalloc-64 (second hop: leakmod_owner_ops), list
 *                         poison and an empty list (a self pointer);
 *   leakmod_vmalloc_one   vmalloc(64 KiB) areas;
 *   leakmod_alloc_pages_one  alloc_pages(GFP_KERNEL, 0).
 * echo stacks > trigger allocates 4096 such pages at once, each from its
 * own kernel stack: page i is allocated under a chain of 12
 * calls through leakmod_path_a/leakmod_path_b spelling i in binary, so
 * every stack differs (also by function names, as folded stacks show
 * them). A stack map of 16 384 buckets loses ~500 of them to collisions.
 * And two that must not be called leaks:
 *   turnover   leakmod_queue_one keeps a FIFO of turnover_backlog records
 *              shaped like the leaked objects (same cache, same contents),
 *              replacing the oldest at turnover_rate a second: every record
 *              outlives a short window, but the cache stays flat;
 *   bulk       after 0.5 s, leakmod_bulk_one allocates bulk_count records from
 *              the named cache "leakmod-120" (120-byte objects, cache-line
 *              aligned: 128 in /proc/slabinfo, so its name does not give
 *              its size) and keeps bulk_kept of them; 1 s later it frees
 *              half of the rest with kmem_cache_free_bulk() and half with
 *              kfree_rcu(): frees that fire no per-object tracepoint.
 * And the seed's case, a slow leak in a busy cache (judged on the stock):
 *   slow       leakmod_slow_one fills a stock of slow_stock 96-byte records
 *              (kmalloc-96) at once, then leaks one more every slow_every_ms,
 *              while leakmod_churn_one allocates churn_rate random-valued
 *              records a second in the same cache and frees the oldest past
 *              CHURN_KEPT (the cache's other users); "stop" ends both and
 *              frees them;
 *   rcuturnover  leakmod_rcu_one keeps a FIFO of rcu_backlog 120-byte records
 *              (kmalloc-128), replacing the oldest at turnover_rate a second
 *              with kfree_rcu(): a stock that dies by frees no per-object
 *              tracepoint shows, and whose slots alike records take again;
 *              "stop" ends it.
 * Everything is kept on lists and freed when the module is removed.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/rcupdate.h>
#include <linux/random.h>

static unsigned int slab_count = 300000;
module_param(slab_count, uint, 0644);
static unsigned int vmalloc_count = 256;
module_param(vmalloc_count, uint, 0644);
static unsigned int pages_count = 16384;
module_param(pages_count, uint, 0644);
static unsigned int duration_ms = 8000;
module_param(duration_ms, uint, 0644);
static unsigned int turnover_backlog = 20000;
module_param(turnover_backlog, uint, 0644);
static unsigned int turnover_rate = 2000;
module_param(turnover_rate, uint, 0644);
static unsigned int bulk_count = 20000;
module_param(bulk_count, uint, 0644);
static unsigned int bulk_kept = 3000;
module_param(bulk_kept, uint, 0644);
static unsigned int slow_stock = 200000;
module_param(slow_stock, uint, 0644);
static unsigned int slow_every_ms = 1000;
module_param(slow_every_ms, uint, 0644);
static unsigned int churn_rate = 2000;
module_param(churn_rate, uint, 0644);
static unsigned int rcu_backlog = 20000;
module_param(rcu_backlog, uint, 0644);

struct leakmod_ops {
	const char *name;
	void (*release)(void *);
};

static void leakmod_release(void *p) { }

static const struct leakmod_ops leakmod_object_ops = {
	.name = "leakmod",
	.release = leakmod_release,
};

static const struct leakmod_ops leakmod_owner_ops = {
	.name = "leakmod owner",
	.release = leakmod_release,
};

/* What the leaked objects belong to: a slab object of another cache
 * (kmalloc-64) whose first word names its type, as the seed's second hop
 * (an fsnotify event's group, whose first word is inotify_fsnotify_ops). */
struct leakmod_owner {
	const struct leakmod_ops *ops;
	u64 objects;
	char name[48];
};

static struct leakmod_owner *owner;

/* 184 bytes (kmalloc-192): every kind of word the scan explains. */
struct leakmod_object {
	const struct leakmod_ops *ops;	/* +0x00 symbol: a pointer into the module */
	u64 magic;			/* +0x08 */
	struct list_head node;		/* +0x10 slab objects: the neighbours */
	struct leakmod_owner *owner;	/* +0x20 slab object, two hops to an ops symbol */
	struct list_head unlinked;	/* +0x28 list_del'd: LIST_POISON1, LIST_POISON2 */
	struct list_head empty;		/* +0x38 an empty list: points at itself */
	u32 serial;
	char tag[108];
};

struct leakmod_area {
	struct list_head node;
	void *mem;
	struct page *page;
};

static LIST_HEAD(objects);
static LIST_HEAD(areas);
static LIST_HEAD(pages);
static DEFINE_SPINLOCK(lock);

enum kind { KIND_NONE, KIND_SLAB, KIND_VMALLOC, KIND_PAGE, KIND_STACKS };
static enum kind active;
static unsigned int done, target, per_tick;
static struct delayed_work work;

static struct leakmod_object *leakmod_fill(struct leakmod_object *o, u64 magic, u32 serial)
{
	if (!o)
		return NULL;
	o->ops = &leakmod_object_ops;
	o->magic = magic;
	o->owner = owner;
	INIT_LIST_HEAD(&o->unlinked);
	list_del(&o->unlinked);
	INIT_LIST_HEAD(&o->empty);
	o->serial = serial;
	memset(o->tag, 'L', sizeof(o->tag));
	memcpy(o->tag, "leakmod: an object nobody frees", 31);
	return o;
}

static noinline struct leakmod_object *leakmod_kmalloc_one(u32 serial)
{
	/* "SYAKLEAK" in memory */
	return leakmod_fill(kmalloc(sizeof(struct leakmod_object), GFP_KERNEL), 0x4b41454c4b415953ULL, serial);
}

/* The same record, from another function: the turnover queue. Its magic
 * differs, so the compiler cannot fold the two functions into one. */
static noinline struct leakmod_object *leakmod_queue_one(u32 serial)
{
	/* "SYAQUEUE" */
	return leakmod_fill(kmalloc(sizeof(struct leakmod_object), GFP_KERNEL), 0x4555455551415953ULL, serial);
}

struct leakmod_record {
	struct rcu_head rcu;
	u64 magic;
	u32 serial;
	char tag[92];
};

static struct kmem_cache *record_cache;

static void leakmod_record_init(void *p)
{
	memset(p, 0, sizeof(struct leakmod_record));
}
static struct leakmod_record **bulk;
static unsigned int bulk_n;

static noinline struct leakmod_record *leakmod_bulk_one(u32 serial)
{
	struct leakmod_record *r = kmem_cache_alloc(record_cache, GFP_KERNEL);

	if (r) {
		r->magic = 0x4b4c5542444f4d4bULL;
		r->serial = serial;
		memset(r->tag, 'B', sizeof(r->tag));
	}
	return r;
}

static noinline void *leakmod_vmalloc_one(void)
{
	void *p = vmalloc(64 << 10);

	if (p)
		memset(p, 0x4c, 64 << 10);
	return p;
}

static noinline struct page *leakmod_alloc_pages_one(void)
{
	struct page *page = alloc_pages(GFP_KERNEL, 0);

	/* Touch it after the call, so the call is not a tail call and this
	 * function stays on the stack the tracepoint records. */
	if (page)
		memset(page_address(page), 0x50, 64);
	return page;
}

#define PATH_BITS 12
/* Distinct side effects: identical bodies could be folded into one. */
static atomic_t path_a_calls, path_b_calls;

static noinline struct page *leakmod_path_b(unsigned int bits, unsigned int depth);

static noinline struct page *leakmod_path_a(unsigned int bits, unsigned int depth)
{
	struct page *page;

	if (!depth)
		page = leakmod_alloc_pages_one();
	else if (bits & 1)
		page = leakmod_path_b(bits >> 1, depth - 1);
	else
		page = leakmod_path_a(bits >> 1, depth - 1);
	/* After the call: not a tail call, so this frame is on the stack. */
	atomic_inc(&path_a_calls);
	return page;
}

static noinline struct page *leakmod_path_b(unsigned int bits, unsigned int depth)
{
	struct page *page;

	if (!depth)
		page = leakmod_alloc_pages_one();
	else if (bits & 1)
		page = leakmod_path_b(bits >> 1, depth - 1);
	else
		page = leakmod_path_a(bits >> 1, depth - 1);
	atomic_inc(&path_b_calls);
	return page;
}

static void leak_some(unsigned int n)
{
	while (n-- && done < target) {
		struct leakmod_area *a;

		switch (active) {
		case KIND_SLAB: {
			struct leakmod_object *o = leakmod_kmalloc_one(done);

			if (!o)
				return;
			spin_lock(&lock);
			list_add(&o->node, &objects);
			spin_unlock(&lock);
			break;
		}
		case KIND_VMALLOC:
		case KIND_PAGE:
		case KIND_STACKS:
			a = kzalloc(sizeof(*a), GFP_KERNEL);
			if (!a)
				return;
			if (active == KIND_VMALLOC)
				a->mem = leakmod_vmalloc_one();
			else if (active == KIND_PAGE)
				a->page = leakmod_alloc_pages_one();
			else
				a->page = leakmod_path_a(done, PATH_BITS);
			if (!a->mem && !a->page) {
				kfree(a);
				return;
			}
			spin_lock(&lock);
			list_add(&a->node, active == KIND_VMALLOC ? &areas : &pages);
			spin_unlock(&lock);
			break;
		default:
			return;
		}
		done++;
	}
}

static void tick(struct work_struct *w)
{
	leak_some(per_tick);
	if (done < target)
		schedule_delayed_work(&work, msecs_to_jiffies(10));
	else
		pr_info("leakmod: leaked %u\n", done);
}

/* The turnover queue: FIFO of records, oldest replaced every tick. */
static LIST_HEAD(queue);
static unsigned int queued, queue_serial;
static struct delayed_work turnover_work;

static void turnover_tick(struct work_struct *w)
{
	unsigned int n = max(1u, turnover_rate / 100);

	while (n--) {
		struct leakmod_object *o = leakmod_queue_one(queue_serial++);

		if (!o)
			break;
		spin_lock(&lock);
		list_add_tail(&o->node, &queue);
		if (++queued > turnover_backlog) {
			struct leakmod_object *old = list_first_entry(&queue, struct leakmod_object, node);

			list_del(&old->node);
			queued--;
			spin_unlock(&lock);
			kfree(old);
			continue;
		}
		spin_unlock(&lock);
	}
	schedule_delayed_work(&turnover_work, msecs_to_jiffies(10));
}

static void turnover_start(void)
{
	cancel_delayed_work_sync(&turnover_work);
	/* The backlog exists before any window: only replacement is seen. */
	while (queued < turnover_backlog) {
		struct leakmod_object *o = leakmod_queue_one(queue_serial++);

		if (!o)
			break;
		spin_lock(&lock);
		list_add_tail(&o->node, &queue);
		queued++;
		spin_unlock(&lock);
	}
	schedule_delayed_work(&turnover_work, msecs_to_jiffies(10));
}

/* Bulk: allocate at +0.5 s, free all but bulk_kept at +1.5 s. */
static struct delayed_work bulk_work;
static bool bulk_allocated;

static void bulk_tick(struct work_struct *w)
{
	unsigned int i, rest, half;

	if (!bulk_allocated) {
		for (bulk_n = 0; bulk_n < bulk_count; bulk_n++) {
			bulk[bulk_n] = leakmod_bulk_one(bulk_n);
			if (!bulk[bulk_n])
				break;
		}
		bulk_allocated = true;
		schedule_delayed_work(&bulk_work, msecs_to_jiffies(1000));
		return;
	}
	rest = bulk_n > bulk_kept ? bulk_n - bulk_kept : 0;
	half = rest / 2;
	/* kmem_cache_free_bulk(): one call, no kmem_cache_free tracepoint. */
	kmem_cache_free_bulk(record_cache, half, (void **)&bulk[bulk_kept]);
	/* kfree_rcu(): freed after a grace period, in kfree_bulk() batches
	 * (SLUB's kfree takes any slab object). */
	for (i = bulk_kept + half; i < bulk_n; i++)
		kfree_rcu(bulk[i], rcu);
	pr_info("leakmod: bulk kept %u, freed %u in bulk, %u by RCU\n", bulk_kept, half, rest - half);
	bulk_n = bulk_kept;
}

/* The slow leak: 96 bytes, kmalloc-96. */
struct leakmod_slow {
	const struct leakmod_ops *ops;
	u64 magic;
	struct list_head node;
	u32 serial;
	char tag[60];
};

static LIST_HEAD(slow_list);
static LIST_HEAD(churn_list);
static unsigned int slow_serial, churned;
static struct delayed_work slow_work, churn_work;
#define CHURN_KEPT 4096

static noinline struct leakmod_slow *leakmod_slow_one(u32 serial)
{
	struct leakmod_slow *o = kmalloc(sizeof(*o), GFP_KERNEL);

	if (o) {
		o->ops = &leakmod_object_ops;
		o->magic = 0x574f4c534b414c53ULL; /* "SLAKSLOW" */
		o->serial = serial;
		memset(o->tag, 'S', sizeof(o->tag));
		memcpy(o->tag, "leakmod: one more every second", 30);
	}
	return o;
}

/* The cache's other users: random bytes, alike to nothing. */
static noinline struct leakmod_slow *leakmod_churn_one(void)
{
	struct leakmod_slow *o = kmalloc(sizeof(*o), GFP_KERNEL);

	if (o) {
		get_random_bytes(o, sizeof(*o));
		o->ops = NULL;
	}
	return o;
}

static void slow_tick(struct work_struct *w)
{
	struct leakmod_slow *o = leakmod_slow_one(slow_serial++);

	if (o) {
		spin_lock(&lock);
		list_add(&o->node, &slow_list);
		spin_unlock(&lock);
	}
	schedule_delayed_work(&slow_work, msecs_to_jiffies(slow_every_ms));
}

static void churn_tick(struct work_struct *w)
{
	unsigned int n = max(1u, churn_rate / 100);

	while (n--) {
		struct leakmod_slow *o = leakmod_churn_one(), *old = NULL;

		if (!o)
			break;
		spin_lock(&lock);
		list_add_tail(&o->node, &churn_list);
		if (++churned > CHURN_KEPT) {
			old = list_first_entry(&churn_list, struct leakmod_slow, node);
			list_del(&old->node);
			churned--;
		}
		spin_unlock(&lock);
		kfree(old);
	}
	schedule_delayed_work(&churn_work, msecs_to_jiffies(10));
}

static void slow_start(void)
{
	unsigned int i;

	for (i = 0; i < slow_stock; i++) {
		struct leakmod_slow *o = leakmod_slow_one(slow_serial++);

		if (!o)
			break;
		spin_lock(&lock);
		list_add(&o->node, &slow_list);
		spin_unlock(&lock);
	}
	schedule_delayed_work(&slow_work, msecs_to_jiffies(slow_every_ms));
	schedule_delayed_work(&churn_work, 0);
}

/* Turnover through kfree_rcu(): 120 bytes, kmalloc-128. */
struct leakmod_rcu_record {
	struct rcu_head rcu;
	const struct leakmod_ops *ops;
	u64 magic;
	struct list_head node;
	u32 serial;
	char tag[68];
};

static LIST_HEAD(rcu_queue);
static unsigned int rcu_queued, rcu_serial;
static struct delayed_work rcu_work;

static noinline struct leakmod_rcu_record *leakmod_rcu_one(u32 serial)
{
	struct leakmod_rcu_record *r = kmalloc(sizeof(*r), GFP_KERNEL);

	if (r) {
		r->ops = &leakmod_object_ops;
		r->magic = 0x5543524e5255544bULL; /* "KTURNRCU" */
		r->serial = serial;
		memset(r->tag, 'R', sizeof(r->tag));
		memcpy(r->tag, "leakmod: replaced, freed by RCU", 31);
	}
	return r;
}

static void rcu_tick(struct work_struct *w)
{
	unsigned int n = max(1u, turnover_rate / 100);

	while (n--) {
		struct leakmod_rcu_record *r = leakmod_rcu_one(rcu_serial++), *old = NULL;

		if (!r)
			break;
		spin_lock(&lock);
		list_add_tail(&r->node, &rcu_queue);
		if (++rcu_queued > rcu_backlog) {
			old = list_first_entry(&rcu_queue, struct leakmod_rcu_record, node);
			list_del(&old->node);
			rcu_queued--;
		}
		spin_unlock(&lock);
		if (old)
			kfree_rcu(old, rcu);
	}
	schedule_delayed_work(&rcu_work, msecs_to_jiffies(10));
}

static void rcu_start(void)
{
	while (rcu_queued < rcu_backlog) {
		struct leakmod_rcu_record *r = leakmod_rcu_one(rcu_serial++);

		if (!r)
			break;
		spin_lock(&lock);
		list_add_tail(&r->node, &rcu_queue);
		rcu_queued++;
		spin_unlock(&lock);
	}
	schedule_delayed_work(&rcu_work, msecs_to_jiffies(10));
}

/* End the slow leak, its churn and the RCU turnover; free what they hold. */
static void slow_stop(void)
{
	struct leakmod_slow *o, *t;
	struct leakmod_rcu_record *r, *u;

	cancel_delayed_work_sync(&slow_work);
	cancel_delayed_work_sync(&churn_work);
	cancel_delayed_work_sync(&rcu_work);
	list_for_each_entry_safe(o, t, &slow_list, node)
		kfree(o);
	list_for_each_entry_safe(o, t, &churn_list, node)
		kfree(o);
	INIT_LIST_HEAD(&slow_list);
	INIT_LIST_HEAD(&churn_list);
	churned = 0;
	list_for_each_entry_safe(r, u, &rcu_queue, node)
		kfree(r);
	INIT_LIST_HEAD(&rcu_queue);
	rcu_queued = 0;
	rcu_barrier();
}

static int trigger_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ticks = max(1u, duration_ms / 10);

	if (sysfs_streq(val, "turnover")) {
		turnover_start();
		return 0;
	}
	if (sysfs_streq(val, "slow")) {
		slow_start();
		return 0;
	}
	if (sysfs_streq(val, "rcuturnover")) {
		rcu_start();
		return 0;
	}
	if (sysfs_streq(val, "stop")) {
		slow_stop();
		return 0;
	}
	if (sysfs_streq(val, "bulk")) {
		if (bulk_allocated)
			return -EBUSY;
		schedule_delayed_work(&bulk_work, msecs_to_jiffies(500));
		return 0;
	}
	cancel_delayed_work_sync(&work);
	if (sysfs_streq(val, "slab")) {
		active = KIND_SLAB;
		target = slab_count;
	} else if (sysfs_streq(val, "vmalloc")) {
		active = KIND_VMALLOC;
		target = vmalloc_count;
	} else if (sysfs_streq(val, "page")) {
		active = KIND_PAGE;
		target = pages_count;
	} else if (sysfs_streq(val, "stacks")) {
		active = KIND_STACKS;
		target = 1 << PATH_BITS;
		ticks = 1;
	} else {
		return -EINVAL;
	}
	done = 0;
	per_tick = max(1u, DIV_ROUND_UP(target, ticks));
	schedule_delayed_work(&work, 0);
	return 0;
}

static const struct kernel_param_ops trigger_ops = { .set = trigger_set };
module_param_cb(trigger, &trigger_ops, NULL, 0200);

static int __init leakmod_init(void)
{
	INIT_DELAYED_WORK(&work, tick);
	INIT_DELAYED_WORK(&turnover_work, turnover_tick);
	INIT_DELAYED_WORK(&bulk_work, bulk_tick);
	INIT_DELAYED_WORK(&slow_work, slow_tick);
	INIT_DELAYED_WORK(&churn_work, churn_tick);
	INIT_DELAYED_WORK(&rcu_work, rcu_tick);
	/* A constructor keeps SLUB from merging it into another cache. */
	record_cache = kmem_cache_create("leakmod-120", 120, 0, SLAB_HWCACHE_ALIGN, leakmod_record_init);
	bulk = kvcalloc(bulk_count, sizeof(*bulk), GFP_KERNEL);
	owner = kzalloc(sizeof(*owner), GFP_KERNEL);
	if (!record_cache || !bulk || !owner) {
		kfree(owner);
		kvfree(bulk);
		kmem_cache_destroy(record_cache);
		return -ENOMEM;
	}
	owner->ops = &leakmod_owner_ops;
	strscpy(owner->name, "the leaked objects' owner", sizeof(owner->name));
	return 0;
}

static void __exit leakmod_exit(void)
{
	struct leakmod_object *o, *on;
	struct leakmod_area *a, *an;
	unsigned int i;

	cancel_delayed_work_sync(&work);
	cancel_delayed_work_sync(&turnover_work);
	cancel_delayed_work_sync(&bulk_work);
	slow_stop();
	list_for_each_entry_safe(o, on, &objects, node)
		kfree(o);
	list_for_each_entry_safe(o, on, &queue, node)
		kfree(o);
	kfree(owner);
	for (i = 0; i < bulk_n; i++)
		kmem_cache_free(record_cache, bulk[i]);
	/* kfree_rcu() batches may still hold records: wait them out. */
	rcu_barrier();
	synchronize_rcu();
	kmem_cache_destroy(record_cache);
	kvfree(bulk);
	list_for_each_entry_safe(a, an, &areas, node) {
		vfree(a->mem);
		kfree(a);
	}
	list_for_each_entry_safe(a, an, &pages, node) {
		__free_pages(a->page, 0);
		kfree(a);
	}
}

module_init(leakmod_init);
module_exit(leakmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Leaks slab objects, vmalloc areas and pages on demand for sysak's tests");
