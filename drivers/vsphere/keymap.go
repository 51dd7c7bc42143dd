package vsphere

import (
	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
)

// scanCode is a key in PutUsbScanCodes' encoding: the USB HID usage in the
// upper 16 bits and the usage page (0x07, keyboard) in the lower.
func scanCode(k bootcmd.Key) int32 { return int32(k)<<16 | 0x07 }

// usbModifiers returns the modifiers in PutUsbScanCodes' form, nil when
// none is held.
func usbModifiers(s bootcmd.Modifiers) *types.UsbScanCodeSpecModifierType {
	if s == 0 {
		return nil
	}
	set := func(m bootcmd.Modifier) *bool {
		if !s.Has(m) {
			return nil
		}
		t := true
		return &t
	}
	return &types.UsbScanCodeSpecModifierType{
		LeftControl: set(bootcmd.LeftCtrl), LeftShift: set(bootcmd.LeftShift), LeftAlt: set(bootcmd.LeftAlt), LeftGui: set(bootcmd.LeftSuper),
		RightControl: set(bootcmd.RightCtrl), RightShift: set(bootcmd.RightShift), RightAlt: set(bootcmd.RightAlt), RightGui: set(bootcmd.RightSuper),
	}
}

// usbEvents converts key presses to PutUsbScanCodes' form.
func usbEvents(keys []bootcmd.Press) []types.UsbScanCodeSpecKeyEvent {
	out := make([]types.UsbScanCodeSpecKeyEvent, len(keys))
	for i, k := range keys {
		out[i] = types.UsbScanCodeSpecKeyEvent{UsbHidCode: scanCode(k.Key), Modifiers: usbModifiers(k.Modifiers)}
	}
	return out
}
