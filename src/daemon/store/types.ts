/** Rows as the store returns them: the domain's vocabulary in one place. */

export interface User {
  id: string;
  username: string;
  email: string | null;
  createdAt: Date;
}
