export function lib() { return "lib"; }
