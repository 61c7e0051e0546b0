// Field names from the client, as error messages show them: JSON-quoted so odd characters stay
// visible, and shortened so a hostile name cannot bloat a response.

const nameCharsShown = 64;

export function quoteName(name: string): string {
  return JSON.stringify(name.length > nameCharsShown ? `${name.slice(0, nameCharsShown)}…` : name);
}
