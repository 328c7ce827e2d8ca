// SPDX-License-Identifier: GPL-2.0
/*
 * leakmod: leaks kernel memory on demand, for sysak's end-to-end tests.
 *
 * echo slab|vmalloc|page > /sys/module/leakmod/parameters/trigger starts
 * leaking that kind at a steady rate for duration_ms, so the leak happens
 * inside a tracing window. Each kind is allocated by its own named
 * noinline function, which is what sysak must name:
 *   leakmod_kmalloc_one   kmalloc(200) objects carrying a pointer to the
 *                         module's ops structure and a recognisable pattern
 *                         (the shape of the original sysak case);
 *   leakmod_vmalloc_one   vmalloc(64 KiB) areas;
 *   leakmod_alloc_pages_one  alloc_pages(GFP_KERNEL, 0).
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

static unsigned int slab_count = 300000;
module_param(slab_count, uint, 0644);
static unsigned int vmalloc_count = 256;
module_param(vmalloc_count, uint, 0644);
static unsigned int pages_count = 16384;
module_param(pages_count, uint, 0644);
static unsigned int duration_ms = 8000;
module_param(duration_ms, uint, 0644);

struct leakmod_ops {
	const char *name;
	void (*release)(void *);
};

static void leakmod_release(void *p) { }

static const struct leakmod_ops leakmod_object_ops = {
	.name = "leakmod",
	.release = leakmod_release,
};

struct leakmod_object {
	const struct leakmod_ops *ops;	/* the clue: a pointer into the module */
	u64 magic;
	struct list_head node;
	u32 serial;
	char tag[148];
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

enum kind { KIND_NONE, KIND_SLAB, KIND_VMALLOC, KIND_PAGE };
static enum kind active;
static unsigned int done, target, per_tick;
static struct delayed_work work;

static noinline struct leakmod_object *leakmod_kmalloc_one(u32 serial)
{
	struct leakmod_object *o = kmalloc(sizeof(*o), GFP_KERNEL);

	if (!o)
		return NULL;
	o->ops = &leakmod_object_ops;
	o->magic = 0x4b41454c4b415953ULL;	/* "SYAKLEAK" in memory */
	o->serial = serial;
	memset(o->tag, 'L', sizeof(o->tag));
	memcpy(o->tag, "leakmod: an object nobody frees", 31);
	return o;
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
			a = kzalloc(sizeof(*a), GFP_KERNEL);
			if (!a)
				return;
			if (active == KIND_VMALLOC)
				a->mem = leakmod_vmalloc_one();
			else
				a->page = leakmod_alloc_pages_one();
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

static int trigger_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ticks = max(1u, duration_ms / 10);

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
	return 0;
}

static void __exit leakmod_exit(void)
{
	struct leakmod_object *o, *on;
	struct leakmod_area *a, *an;

	cancel_delayed_work_sync(&work);
	list_for_each_entry_safe(o, on, &objects, node)
		kfree(o);
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
