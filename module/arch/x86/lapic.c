// SPDX-License-Identifier: GPL-2.0
/* The in-kernel local APIC: being written (stub so the tree builds). */
#include "lapic.h"

int kestrel_lapic_rdmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 *val)
{
	return -ENODEV;
}

int kestrel_lapic_wrmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 val)
{
	return -ENODEV;
}

int kestrel_lapic_mmio(struct kestrel_vcpu *vcpu, u64 gpa, int len,
		       bool write, u64 *val)
{
	return -ENODEV;
}

bool kestrel_x86_cancel_entry(struct kestrel_vcpu *vcpu)
{
	return false;
}

int kestrel_lapic_deliver_msi(struct kestrel_vm *vm,
			      const struct kestrel_msi *msi)
{
	return -ENXIO;
}
