import type { TurnResult } from '../chat/turnResult.js';
import type { Queryable } from '../postgres/pool.js';
import { getChatByID } from '../store/chats.js';
import { getLastChatMessageByRole } from '../store/messages.js';
import { getChatModelConfigByID, getEnabledChatProviders } from '../store/providers.js';
import type { UncachedTurnReads } from './turnPush.js';

/**
 * What Coder's push after a turn reads before sending: the chat, its last assistant message, the enabled providers
 * and the model config — four pool acquisitions for facts the turn already had. For the scaletest's comparison only.
 */
export function coderLikeTurnReads(db: Queryable): UncachedTurnReads {
  return async (r: TurnResult) => {
    const chat = await getChatByID(db, r.chatId);
    const last = await getLastChatMessageByRole(db, r.chatId, 'assistant');
    await getEnabledChatProviders(db);
    if (r.model.modelConfigId) await getChatModelConfigByID(db, r.model.modelConfigId);
    return { ...r, title: chat?.title ?? r.title, finalText: r.outcome === 'waiting' ? last?.content : r.finalText };
  };
}
