import { flag } from '../commands/cmd.js';

export const core = flag;
