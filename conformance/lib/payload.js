// The rich payload of scenario 2: non-ASCII, astral-plane emoji, escaped quotes,
// markup, integers, floats, nested arrays with null/boolean, empty object.
export const RICH_PAYLOAD = Object.freeze({
    text: "héllo 😀 \"quoted\" <b>x</b>",
    n: 42,
    f: 1.5,
    nested: { arr: [1, null, true, "s"] },
    empty: {},
});
